#!/usr/bin/env bash
# Installs torch into the venv before the project, so that pip keeps this build afterwards.
# Usage: scripts/install_torch.sh <python> <constraints file>
#
# PyPI's Linux torch is the CUDA build, which pulls several GB of nvidia-* wheels. On a machine
# without an NVIDIA driver, torch comes from PyTorch's CPU wheel index instead (the wheel only:
# its dependencies come from the default index, where the constraints' exact versions are). When
# that index cannot be reached (offline mirrors, firewalls), the default index's build is
# installed, after a short timeout and with a message. With a driver, the default index is used.
#
# TORCH_BUILD=cpu|default overrides the detection (default: auto); NVIDIA_DRIVER_PROC names the
# driver's /proc folder (for the tests); TORCH_CPU_INDEX_URL names the CPU index.
set -euo pipefail

python=$1
constraints=$2
cpu_index=${TORCH_CPU_INDEX_URL:-https://download.pytorch.org/whl/cpu}
build=${TORCH_BUILD:-auto}

has_nvidia_driver() {
  command -v nvidia-smi >/dev/null || [ -e "${NVIDIA_DRIVER_PROC:-/proc/driver/nvidia}" ]
}

if [ "$build" = auto ]; then
  if has_nvidia_driver; then build=default; else build=cpu; fi
  echo "torch: $([ $build = cpu ] && echo no) NVIDIA driver found (TORCH_BUILD=cpu|default overrides)"
fi

case "$build" in
  cpu)
    echo "torch: installing the CPU build from $cpu_index"
    if ! "$python" -m pip install -q --no-deps --timeout 10 --retries 0 \
      --index-url "$cpu_index" -c "$constraints" torch; then
      echo "torch: $cpu_index could not be reached or has no matching torch;" \
        "installing the default index's build (on Linux the CUDA build, several GB)" >&2
    fi
    ;;
  default)
    echo "torch: installing the default index's build"
    ;;
  *)
    echo "TORCH_BUILD must be auto, cpu or default, not '$build'" >&2
    exit 2
    ;;
esac
# torch's dependencies, or torch itself when the CPU build was not installed: a torch already
# installed satisfies the constraint's version (2.13.0 matches 2.13.0+cpu) and stays.
"$python" -m pip install -q -c "$constraints" torch
