#!/usr/bin/env bash
# Run the data-plane benchmark on a GPU machine with Python 3.12 + torch and no registry access,
# from the folder bench/build_carry.sh made (this script lies in its repo/bench/):
#
#   bash .carry-bench/repo/bench/run_dataplane.sh [full|quick] [run.py arguments]
#
# 1. a virtualenv for the python backend's stub (/tmp/stubenv): the carried cp312 packages
#    (numpy 1.26 ...) first, then the image's site-packages (torch, tokenizers) through a .pth;
#    the stub runs the `python3` first on PATH, and the runtime puts this one there;
# 2. tritonserver from the carried tarball (INFERLINE_TRITONSERVER);
# 3. the artifacts (bench/dataplane/build_artifacts.py: BERT-large-shaped encoder, forest);
# 4. bench/dataplane/run.py, which writes $OUT/dataplane.json and logs.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CARRY=$(dirname "$REPO")
PROFILE=${1:-full}
shift || true
OUT=${OUT:-/tmp/dataplane-out}
mkdir -p "$OUT"
cd "$REPO"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
t0=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
  --format=csv,noheader || true
nproc; uname -r; df -h /dev/shm /tmp | tail -2
IMAGE_PY=$(command -v python3)
IMAGE_SITE=$("$IMAGE_PY" -c 'import site; print(site.getsitepackages()[0])')

echo "== stub environment"
PY=/tmp/stubenv/bin/python3
if [ ! -f /tmp/stubenv/.carried ]; then
  "$IMAGE_PY" -m venv --without-pip /tmp/stubenv
  SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  tar -xJf "$CARRY/site-stub.tar.xz" -C "$SITE"
  echo "import site; site.addsitedir('$IMAGE_SITE')" >"$SITE/zzz_image_site.pth"
  touch /tmp/stubenv/.carried
fi
"$PY" -c 'import numpy, scipy.sparse, torch, xgboost, tokenizers, pydantic, yaml, typer, obstore
from tritonclient.grpc import model_config_pb2
print("numpy", numpy.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      "xgboost", xgboost.__version__, "tokenizers", tokenizers.__version__)'

echo "== tritonserver"
[ -x /tmp/tritonserver/bin/tritonserver ] || tar -xJf "$CARRY/tritonserver.tar.xz" -C /tmp
export INFERLINE_TRITONSERVER=/tmp/tritonserver/bin/tritonserver
export PYTHONPATH=$REPO/operator

SHAPE=(--shape large)
[ "$PROFILE" = tiny ] && { SHAPE=(--shape tiny --train-rows 300); PROFILE=quick; }
echo "== artifacts (${SHAPE[*]}) t=$(( $(date +%s) - t0 ))s"
"$PY" bench/dataplane/build_artifacts.py "${SHAPE[@]}" --tokenizer "$CARRY/tokenizer.json"

echo "== benchmark ($PROFILE) t=$(( $(date +%s) - t0 ))s"
set +e
"$PY" bench/dataplane/run.py --out "$OUT" --profile "$PROFILE" "$@"
code=$?
# What comes back from the device machine is a few files: pack the logs into one.
tar -czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"
echo "== done ($code) t=$(( $(date +%s) - t0 ))s"
exit $code
