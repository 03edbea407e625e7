#!/usr/bin/env bash
# Run bench/gpu_check.py on a GPU machine that has Python 3.12 with torch but no registry access.
#
# Carried next to the repository (both ignored by git):
#   .whl/wheels.tar.xz                 py3.12 wheels (numpy 1.26.4, pydantic, tritonclient[http]
#                                      and its gevent stack, grpcio, protobuf, xgboost-cpu,
#                                      treelite), re-zipped uncompressed and packed with xz
#   .whl/scipy-1.15.3-pruned.tar.xz    scipy 1.15.3 installed, minus the subpackages that
#                                      `import scipy.sparse` does not load (xgboost and treelite
#                                      need scipy.sparse; the image's scipy needs numpy >= 2)
#   .ts/tritonserver.tar.xz            tritonserver/{bin,backends/python,lib} from
#                                      nvidia-pytriton 0.7.0, with the Python 3.12 stub
#
# The python backend stub runs Python isolated (PYTHONPATH is ignored) and takes the
# site-packages of the `python3` first on PATH. So the packages go into a virtualenv of their
# own, /tmp/stubenv, whose site-packages hold numpy 1.26 and a .pth that appends the image's
# site-packages (torch); the benchmark runs with that interpreter, and the runtime puts its
# directory first on PATH for the stub.
#
#   bash bench/gpu_check_device.sh [gpu_check.py arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"

echo "== machine"
nvidia-smi -L || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
df -h /dev/shm | tail -1 || true
IMAGE_PY=$(command -v python3)
IMAGE_SITE=$("$IMAGE_PY" -c 'import site; print(site.getsitepackages()[0])')
"$IMAGE_PY" -c 'import sys, sysconfig, glob, numpy, torch
libdir = sysconfig.get_config_var("LIBDIR")
print(sys.version.split()[0], sys.executable, getattr(sys, "_base_executable", ""))
print("libpython:", glob.glob(libdir + "/libpython3*.so*"))
print("image numpy", numpy.__version__, "torch", torch.__version__, torch.version.cuda)'

echo "== stub environment"
"$IMAGE_PY" -m venv --without-pip /tmp/stubenv
SITE=$(/tmp/stubenv/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p /tmp/wheels
tar -xJf .whl/wheels.tar.xz -C /tmp/wheels
"$IMAGE_PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" \
  /tmp/wheels/*.whl
tar -xJf .whl/scipy-1.15.3-pruned.tar.xz -C "$SITE"
echo "import site; site.addsitedir('$IMAGE_SITE')" >"$SITE/zzz_image_site.pth"
/tmp/stubenv/bin/python3 -c 'import numpy, scipy.sparse, torch, xgboost, treelite.gtil, grpc
import google.protobuf, pydantic, tritonclient.http, yaml, typer, fsspec
x = torch.from_numpy(numpy.arange(4, dtype="float32"))
if torch.cuda.is_available():
    x = x.cuda()
print("stubenv numpy", numpy.__version__, "scipy", scipy.__version__, "torch", torch.__version__,
      "xgboost", xgboost.__version__, "grpcio", grpc.__version__, "protobuf",
      google.protobuf.__version__, "sum", x.sum().item(), x.device)'

echo "== tritonserver"
tar -xJf .ts/tritonserver.tar.xz -C /tmp
export INFERLINE_TRITONSERVER=/tmp/tritonserver/bin/tritonserver
export PYTHONPATH=$PWD/operator
export PYTHONUNBUFFERED=1

echo "== gpu_check"
/tmp/stubenv/bin/python3 bench/gpu_check.py "$@"
