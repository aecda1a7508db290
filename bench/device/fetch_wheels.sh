#!/usr/bin/env bash
# Run HERE (a machine with PyPI) before bench/device/run_throughput.sh: downloads into .whl/ (git
# ignored) the wheels a bare CUDA machine lacks for the throughput benchmark, for its Python 3.12,
# x86-64. Its image already holds torch, numpy, scipy, scikit-image, scikit-learn, pandas, timm,
# torchvision, matplotlib, seaborn, pyyaml, requests, httpx, rich, msgpack and tqdm. SimpleITK (~50 MB)
# and Polars (~40 MB) do not fit the carry limit: bench/device/carried_wheels.sh puts empty
# placeholders in their place (nnU-Net reads the data with NibabelIO; no benchmark calls Polars).
# batchgenerators' own dependencies future and unittest2 are left out: it imports neither on
# Python 3, and unittest2's `argparse` backport would shadow the standard library's.
set -euo pipefail
cd "$(dirname "$0")/../.."
PURE=(
  nnunetv2==2.8.1 dynamic-network-architectures==0.4.4 batchgenerators==0.25.5
  batchgeneratorsv2==0.3.6 acvl-utils==0.2.6 nibabel==5.4.2 graphviz==0.21 yacs==0.1.8
)
BINARY=(
  connected-components-3d==4.1.1 blosc2==4.14.1 numexpr==2.14.2 ndindex==1.10.1
)
PLATFORMS=()
for n in 17 24 27 28 31 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
mkdir -p .whl
# `pip wheel`: acvl-utils is published as a source archive only.
python3 -m pip wheel -q --no-deps -w .whl "${PURE[@]}"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]}" -d .whl "${BINARY[@]}"
du -sh .whl
