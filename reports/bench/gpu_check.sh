#!/usr/bin/env bash
# The lab's GPU check, in one command, on a machine with a CUDA GPU (from the checkout's root):
#
#   OUT=/tmp/gpu-check bash reports/bench/gpu_check.sh            # tests + bench (~10-20 min)
#   OUT=/tmp/gpu-check LAB_DATA_DIR=/data bash reports/bench/gpu_check.sh --train
#                                # + the Multi30k Transformer trained on cuda, decoded per precision
#
# Everything goes to $OUT (default ./gpu-check-<date>): the machine (nvidia-smi, versions),
# pytest -m gpu (log + JUnit XML), lab bench --device cuda (device_bench.json/md),
# lab.bench.rng_cost, and with --train the Multi30k run directories and precisions.md.
# steps.tsv records each step's exit status and seconds; a failing step does not stop the
# others. Copy $OUT/bench/device_bench.* into reports/bench/cuda/ to publish the figures.
#
# Install: a fresh venv in $OUT/venv with `pip install -e '.[hf,ct2,dev]'`. On a machine without
# network the venv sees the system's packages (--system-site-packages) and the lab is installed
# without dependencies, so a preinstalled CUDA torch is used; VENV=none skips the venv and uses
# the current python. TORCH_INDEX_URL picks a torch wheel index (e.g. .../whl/cu124).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
TRAIN=0
[ "${1:-}" = "--train" ] && TRAIN=1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 1
export WANDB_MODE=offline WANDB_SILENT=true LAB_CACHE_DIR="$OUT/cache" PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # deterministic cuBLAS: the resume test compares weights
printf 'step\tstatus\tseconds\n' > "$OUT/steps.tsv"

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, record status and time
  local name=$1 start=$SECONDS
  shift
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" | tee -a "$OUT/steps.tsv"
  tail -n 3 "$OUT/$name.log" >> "$OUT/summary.txt"
  return $rc
}

install() {
  if [ "${VENV:-}" = none ]; then PY=$(command -v python3); return 0; fi
  python3 -m venv --system-site-packages "$OUT/venv" || return 1
  PY="$OUT/venv/bin/python"
  local extra=()
  [ -n "${TORCH_INDEX_URL:-}" ] && extra=(--extra-index-url "$TORCH_INDEX_URL")
  if ! "$PY" -m pip install -q "${extra[@]}" -e ".[hf,ct2,dev]"; then
    echo "pip could not install the dependencies (offline?): using the system's packages"
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . || return 1
  fi
}

machine() {
  nvidia-smi || true
  "$PY" - <<'EOF'
import importlib.metadata as md, json, torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "available": torch.cuda.is_available()}
if torch.cuda.is_available():
    info |= {"device": torch.cuda.get_device_name(0), "cudnn": torch.backends.cudnn.version(),
             "bf16": torch.cuda.is_bf16_supported()}
for name in ("transformers", "ctranslate2", "decoding-lab"):
    try:
        info[name] = md.version(name)
    except md.PackageNotFoundError:
        info[name] = None
print(json.dumps(info, indent=1))
assert info["available"], "torch sees no CUDA device"
EOF
}

train_and_decode() {  # the Multi30k Transformer on cuda, then its test set in each precision
  [ -n "${LAB_DATA_DIR:-}" ] || { echo "set LAB_DATA_DIR to the data (Multi30k)"; return 1; }
  local base=(+experiment=multi30k model=transformer search=beam logger=none device=cuda)
  local dirs=()
  for p in fp32 bf16 fp16; do
    "$PY" -m lab.cli run "${base[@]}" "precision=$p" "hydra.run.dir=$OUT/multi30k/$p" || return 1
    dirs+=("$OUT/multi30k/$p")
  done
  "$PY" -m lab.bench.precisions "${dirs[@]}" --out "$OUT/multi30k"
}

step install install || { echo "install failed: see $OUT/install.log"; exit 1; }
step machine machine || { echo "no CUDA device: see $OUT/machine.log"; exit 1; }
# -o addopts= : no xdist needed, and -m gpu is the only selection
step pytest_gpu "$PY" -m pytest -o addopts= -m gpu -p no:cacheprovider -rs \
  --junitxml="$OUT/pytest_gpu.xml" tests
step bench "$PY" -m lab.cli bench --device cuda --out "$OUT/bench"
step rng_cost "$PY" -m lab.bench.rng_cost --device cuda --mode full
[ "$TRAIN" = 1 ] && step multi30k train_and_decode
echo "done: $OUT (steps.tsv, summary.txt)"
