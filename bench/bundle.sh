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
  -p:DebugType=none -p:GenerateDocumentationFile=false -o "$stage/app" >"$stage/publish.log" 2>&1 \
  || { tail -30 "$stage/publish.log" >&2; exit 1; }
mkdir -p "$out"
XZ_OPT=-T0 tar cJf "$out/bundle.tar.xz" -C "$stage/app" .
echo "bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1))"
echo "run:    mkdir -p /tmp/app && tar xJf $out/bundle.tar.xz -C /tmp/app && /tmp/app/gpunet --help"
