#!/usr/bin/env bash
# GPU verification in one command, for the first minutes anyone has on an NVIDIA machine: assembles every kernel's PTX with
# ptxas (registers, spills, shared memory, occupancy per kernel, before anything is timed), then `devices`, the full
# `check`, `models`, a GPU slice of ONNX's node suite, `run --preset medium` beside cuBLAS and PyTorch, and one training run
# each of `train cnn` and `train gpt`, with PyTorch's images/s for the same CNN on the same GPU. Every step has a time cap
# inside one overall deadline (8 minutes by default), so the script always finishes and always writes its folder.
#
#   bench/bundle.sh .gpubundle                       # here: the self-contained CLI and the data slices
#   bench/gpu-verify.sh [RESULTS_DIR]                # there, from the repository root (RESULTS_DIR default /tmp/gpu-verify)
#
# With $OUT set (the device tool), the folder also comes back packed as $OUT/gpu-verify.tar.gz, beside $OUT/summary.txt.
# Environment: GPUNET_VERIFY_DEVICE (default cuda), GPUNET_APP (a command that runs the CLI; default: the bundle unpacked
# into /tmp/app), GPUNET_BUNDLE (default .gpubundle), PYTHON (default python3), GPUNET_VERIFY_SECONDS (default 480),
# PTXAS (default ptxas), GPUNET_VERIFY_ONLY (step names to run, e.g. "devices ptxas"). A dry run here, on the CPU with the built CLI:
#   GPUNET_VERIFY_DEVICE=cpu GPUNET_APP="dotnet bench/bin/Release/net10.0/gpunet.dll" PYTHON=/usr/bin/python3 bench/gpu-verify.sh
set -uo pipefail
started=$(date +%s)
dir=${1:-/tmp/gpu-verify}
device=${GPUNET_VERIFY_DEVICE:-cuda}
bundle=${GPUNET_BUNDLE:-.gpubundle}
python=${PYTHON:-python3}
ptxas=${PTXAS:-ptxas}
deadline=$((started + ${GPUNET_VERIFY_SECONDS:-480}))
rm -rf "$dir" && mkdir -p "$dir"
summary="$dir/summary.txt"

if [ -z "${GPUNET_APP:-}" ]; then
  mkdir -p /tmp/app && tar xJf "$bundle/bundle.tar.xz" -C /tmp/app || { echo "no bundle at $bundle (run bench/bundle.sh $bundle)" >&2; exit 2; }
  app=/tmp/app/gpunet
else
  app=$GPUNET_APP
fi
data=/tmp/gpu-verify-data
mkdir -p "$data"
for slice in fashion-mnist onnx-node; do
  [ -f "$bundle/$slice.tar" ] && tar xf "$bundle/$slice.tar" -C "$data"
  [ -f "$bundle/$slice.tar.xz" ] && tar xJf "$bundle/$slice.tar.xz" -C "$data"
done
fashion=${GPUNET_FASHION:-$data/fashion-mnist}
[ -d "$fashion" ] || fashion=/usr/share/datasets/fashion-mnist
onnx=${GPUNET_ONNX_NODE:-$data/onnx-node}
[ -d "$onnx" ] || onnx=/usr/share/libonnx-testdata/data/node

{ echo "gpu-verify on $(hostname) at $(date -u +%FT%TZ), device $device"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; } >"$summary"

# step NAME CAP_SECONDS COMMAND...: runs with at most CAP seconds and never past the deadline; output in NAME.txt, a line in the summary.
step() {
  local name=$1 cap=$2
  shift 2
  if [ -n "${GPUNET_VERIFY_ONLY:-}" ] && ! [[ " $GPUNET_VERIFY_ONLY " == *" $name "* ]]; then
    return
  fi
  local left=$((deadline - $(date +%s) - 5))
  if [ "$left" -lt 5 ]; then
    echo "$name: skipped (deadline reached)" >>"$summary"
    return
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  local t0 rc took
  t0=$(date +%s%N)
  if [ "$(type -t "$1")" = function ]; then
    timeout "$cap" bash -c "$*" >"$dir/$name.txt" 2>&1
  else
    timeout "$cap" "$@" >"$dir/$name.txt" 2>&1
  fi
  rc=$?
  took=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  local verdict="ok"
  [ "$rc" -eq 124 ] && verdict="TIMED OUT after ${cap}s"
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && verdict="exit $rc"
  # The step's own verdict line (a count, a rate, an accuracy) when it prints one, else its last line.
  local said
  said=$(grep -E 'passed|accuracy|images/s|steps/s|kernels|CUDA:|devices$|rows matched' "$dir/$name.txt" | grep -v '^\[' | tail -1)
  [ -z "$said" ] && said=$(grep -E 'step [0-9]+/[0-9]+' "$dir/$name.txt" | tail -1)
  [ -z "$said" ] && said=$(grep -v '^\s*$' "$dir/$name.txt" | tail -1)
  printf '%-14s %-24s %6s s   %s\n' "$name" "$verdict" "$took" "$(echo "$said" | sed 's/^\[[#.]*\] //' | cut -c1-160)" >>"$summary"
}

# 1. PTX through ptxas before anything runs: a kernel the driver's JIT would reject, or one that spills, shows here first.
ptxas_table() {
  local ptxdir=$dir/ptx
  mkdir -p "$ptxdir"
  $app ptx --out "$ptxdir" >"$dir/ptx-summary.txt" 2>&1 || { echo "ptx failed"; tail -3 "$dir/ptx-summary.txt"; return 1; }
  grep -m1 '^PTX' "$dir/ptx-summary.txt"
  if ! command -v "$ptxas" >/dev/null 2>&1; then
    echo "ptxas not found: PTX written, not assembled"
    return 0
  fi
  ls "$ptxdir"/*.ptx | xargs -P "$(nproc)" -I{} sh -c "$ptxas -arch=sm_90 -v '{}' -o /dev/null >'{}.log' 2>&1; echo \"exit \$?\" >>'{}.log'"
  # ptxas -v says "Used R registers, used B barriers, S bytes smem, ..." and "K bytes stack frame, A bytes spill stores,
  # B bytes spill loads" per entry point. Occupancy is the theoretical one of a 256-thread block on sm_90 (64K registers,
  # 2,048 threads, 228 KiB of shared memory per SM, registers allocated per warp in 256s, 1 KiB reserved per block).
  awk '
    function flush() {
      if (name == "") return
      b = 8
      if (regs > 0) { rb = int(65536 / (int((regs * 32 + 255) / 256) * 256 * 8)); if (rb < b) b = rb }
      if (smem > 0) { sb = int(233472 / (smem + 1024)); if (sb < b) b = sb }
      printf "%s\t%d\t%d\t%d\t%d\t%d\t%.1f%%\t%s\n", name, regs, stores, loads, smem, stack, b * 256 / 2048 * 100, status
    }
    BEGIN { print "kernel\tregisters\tspill_stores\tspill_loads\tshared_bytes\tstack_bytes\toccupancy_256\tstatus" }
    FNR == 1 { flush(); name = FILENAME; sub(/.*\//, "", name); sub(/\.ptx\.log$/, "", name); regs = smem = stack = stores = loads = 0; status = "ok"; err = "" }
    /Used [0-9]+ registers/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^registers/ && $i + 0 > regs) regs = $i + 0 }
    /bytes smem/ { for (i = 1; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/ && $i + 0 > smem) smem = $i + 0 }
    /bytes stack frame/ { for (i = 1; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) == "stack" && $i + 0 > stack) stack = $i + 0 }
    /spill stores/ { for (i = 1; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^stores/) stores += $i }
    /spill loads/ { for (i = 1; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^loads/) loads += $i }
    /error/ && err == "" { err = $0 }
    /^exit [1-9]/ { status = "FAILED: " err }
    END { flush() }' "$ptxdir"/*.ptx.log >"$dir/ptxas.tsv"
  awk -F'\t' 'NR > 1 { n++; if ($8 != "ok") f++; if ($3 > 0 || $4 > 0) s++ }
    END { printf "ptxas -arch=sm_90: %d kernels, %d failed, %d spill\n", n, f, s; exit f > 0 }' "$dir/ptxas.tsv"
}
export dir app ptxas
export -f ptxas_table
step devices 30 $app devices
step ptxas 90 ptxas_table
step check 150 $app check --device "$device" --json "$dir/check.json"
step models 45 $app models --device "$device"
step train-cnn 60 $app train cnn --device "$device" --data "$fashion" --limit 10000 --epochs 1 --out "$dir/train"
step torch-cnn 40 "$python" bench/peers/torch_train_step.py --device "$device" --batch 64 --time-steps 100
# The VAE reuses train-cnn's classifier (train/cnn.safetensors) for its Fréchet distance.
step train-vae 60 $app train vae --device "$device" --data "$fashion" --limit 10000 --epochs 2 --fd-samples 2000 --out "$dir/train"
step torch-vae 40 "$python" bench/peers/torch_train_step.py --model vae --device "$device" --batch 128 --time-steps 100
step train-gan 60 $app train gan --device "$device" --data "$fashion" --limit 10000 --epochs 1 --fd-samples 2000 --out "$dir/train"
step torch-gan 40 "$python" bench/peers/torch_train_step.py --model gan --device "$device" --batch 64 --time-steps 100
step train-gpt 60 $app train gpt --device "$device" --steps 200 --out "$dir/train"
step onnx-node 60 $app onnx test "$onnx" --device "$device" --json "$dir/onnx-node.json"
step run-medium 120 $app run --device "$device" --preset medium --json "$dir/run-medium.json" --md "$dir/run-medium.md"
step torch-peer 60 "$python" bench/peers/torch_peer.py --preset medium --json "$dir/torch-medium.json"
[ -f "$dir/run-medium.json" ] && [ -f "$dir/torch-medium.json" ] && step compare 20 $app compare "$dir/run-medium.json" "$dir/torch-medium.json"

rm -rf "$dir/ptx" "$dir/train"/*.safetensors
echo "total $(($(date +%s) - started)) s" >>"$summary"
cat "$summary"
if [ -n "${OUT:-}" ]; then
  tar czf "$OUT/gpu-verify.tar.gz" -C "$(dirname "$dir")" "$(basename "$dir")"
  cp "$summary" "$OUT/summary.txt"
fi
