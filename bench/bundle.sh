#!/usr/bin/env bash
# Bundles the gpunet CLI for a linux-x64 machine that has a GPU driver but no .NET: a self-contained publish (the .NET
# runtime inside, about 50 MB compressed) packed as OUTDIR/bundle.tar.xz.
#
#   bench/bundle.sh OUTDIR          (OUTDIR is ignored by git when it is .gpubundle)
#
# On the target machine:
#   mkdir -p /tmp/app && tar xJf OUTDIR/bundle.tar.xz -C /tmp/app && /tmp/app/gpunet check --device cuda
set -euo pipefail
out=${1:?usage: bench/bundle.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dotnet publish "$here/GpuNet.Bench.csproj" -c Release -r linux-x64 --self-contained true \
  -p:DebugType=none -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en -o "$stage/app" >"$stage/publish.log" 2>&1 \
  || { tail -30 "$stage/publish.log" >&2; exit 1; }
# Windows-only native files that the publish carries along anyway (ONNX Runtime's DLL, BenchmarkDotNet's ETW helpers):
# 17 MB of the bundle that no Linux machine loads.
rm -rf "$stage/app/onnxruntime.dll" "$stage/app/onnxruntime_providers_shared.dll" "$stage/app/amd64" "$stage/app/x86" "$stage/app/arm64"
mkdir -p "$out"
XZ_OPT=-T0 tar cJf "$out/bundle.tar.xz" -C "$stage/app" .
echo "bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1))"
# The data bench/gpu-verify.sh needs, sliced small enough to travel beside the bundle: the first 10,000 training and
# 2,000 test images of Fashion-MNIST (Debian's dataset-fashion-mnist) and ONNX's node cases (Debian's libonnx-testdata).
fashion=/usr/share/datasets/fashion-mnist
if [ -d "$fashion" ]; then
  mkdir -p "$stage/data/fashion-mnist"
  python3 - "$fashion" "$stage/data/fashion-mnist" <<'PY'
import gzip, struct, sys
src, dst = sys.argv[1], sys.argv[2]
for split, count in (("train", 10000), ("t10k", 2000)):
    for kind, item in (("images-idx3-ubyte", 784), ("labels-idx1-ubyte", 1)):
        with gzip.open(f"{src}/{split}-{kind}.gz") as f:
            data = f.read()
        header = 16 if item == 784 else 8
        body = bytearray(data[:header])
        struct.pack_into(">I", body, 4, count)
        with gzip.open(f"{dst}/{split}-{kind}.gz", "wb") as f:
            f.write(bytes(body) + data[header:header + count * item])
PY
  tar cf "$out/fashion-mnist.tar" -C "$stage/data" fashion-mnist
fi
node=/usr/share/libonnx-testdata/data/node
if [ -d "$node" ]; then
  mkdir -p "$stage/data/onnx-node"
  cp -r "$node"/. "$stage/data/onnx-node/"
  XZ_OPT=-T0 tar cJf "$out/onnx-node.tar.xz" -C "$stage/data" onnx-node
fi
du -ch "$out"/* | tail -1
echo "run:    mkdir -p /tmp/app && tar xJf $out/bundle.tar.xz -C /tmp/app && /tmp/app/gpunet --help"
