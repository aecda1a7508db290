# Sourced by the bench/device scripts on a bare CUDA machine, from the repository root: installs
# the wheels carried in .whl/ (bench/device/fetch_wheels.sh) into /tmp/site and stands in empty
# modules for SimpleITK and Polars, which do not fit the carry limit and which the benchmarks
# never call (nnU-Net reads the data with NibabelIO). Without .whl/ it does nothing.
if compgen -G '.whl/*.whl' >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  for module in SimpleITK polars; do
    python3 -c "import $module" 2>/dev/null && continue
    mkdir -p "/tmp/site/$module"
    echo '"""Placeholder: the device benchmarks never call this package."""' \
      >"/tmp/site/$module/__init__.py"
  done
  export PYTHONPATH=/tmp/site:$PWD
fi
