#!/usr/bin/env bash
# The one device call of benchmarks/gpu_check.py (see benchmarks/README.md).
#
#   bash benchmarks/gpu_check.sh [more gpu_check.py options]
#
# Runs from the repository root with unbuffered output, no network, the carried inputs in
# .gpu-inputs/ (if present: prepare them with
# `python benchmarks/gpu_check.py --prepare-inputs .gpu-inputs`), a time budget
# (GPU_CHECK_BUDGET seconds, default 450) and a hard stop 60 s after it. Where $OUT is set
# (the device machine), the log and the JSON are written there too, so they come back.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1 COURSE_OFFLINE=1 MPLBACKEND=Agg
inputs=.gpu-inputs
if [ -d "$inputs/site" ]; then
    export PYTHONPATH="$PWD/$inputs/site${PYTHONPATH:+:$PYTHONPATH}"
fi
budget=${GPU_CHECK_BUDGET:-450}
args=(--budget "$budget")
[ -d "$inputs/cifar10" ] && args+=(--data "$inputs/cifar10")
[ -d "$inputs/mobilenet-v2-imagenet" ] && args+=(--pretrained "$inputs/mobilenet-v2-imagenet")
log=/dev/null
if [ -n "${OUT:-}" ]; then
    args+=(--copy-to "$OUT")
    log="$OUT/gpu_check.log"
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
fi
python=${PYTHON:-python3}
timeout --signal=INT --kill-after=20 $((${budget%.*} + 60)) \
    "$python" benchmarks/gpu_check.py "${args[@]}" "$@" 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
