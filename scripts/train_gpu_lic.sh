#!/usr/bin/env bash
# One GPU window, one call: the lic lossy layer and its residual model, resumed from the
# committed checkpoint, trained on the lossless-WebP originals of the GPU bundle.
#
# Prepared here (CPU machine), once; data/ is git-ignored, so the call carries it:
#   python -m lossless_bpg.train.gpu_bundle make --data ../shared/datasets/train --out data/gpu_bundle --max-mb 50
# The call sends at most 64 MiB: run `scripts/device_tree.py stash` first (training_runs/README.md).
# Invoked on the device machine (tool `run`, carry ["data/gpu_bundle"], timeout_s 600):
#   bash scripts/train_gpu_lic.sh
# Environment (all optional):
#   RESUME    checkpoint to continue (default: training_runs/lic_cpu/checkpoint.pt when present)
#   CONFIG    training YAML (default lossless_bpg/configs/lic_gpu.yaml)
#   WALL_MIN  minutes of wall time for the whole script (default 8.5; the run tool allows 10)
#   OUT       where the checkpoint, log and exported weights go (the run tool sets it)
# Dry run on the 2-core CPU (2026-11-30, a 6 MB bundle, PY=.venv/bin/python, WALL_MIN=4): resumed
# training_runs/lic_cpu's step 28,650 with a new cycle, validated and exported the pair: exit 0.
# Writes to $OUT: train.log, checkpoint.pt (resumable), weights/ (the exported pair: lic/<id>.pt
# with its card, <residual id>.pt with its card; copy them into lossless_bpg/weights/).
set -u -o pipefail
OUT=${OUT:-out/gpu_lic}
PY=${PY:-python3}
CONFIG=${CONFIG:-lossless_bpg/configs/lic_gpu.yaml}
BUNDLE=${BUNDLE:-data/gpu_bundle}
WALL_MIN=${WALL_MIN:-8.5}
RESUME=${RESUME:-training_runs/lic_cpu/checkpoint.pt}
CHECKPOINT=$OUT/checkpoint.pt
mkdir -p "$OUT"
exec > >(tee -a "$OUT/train.log") 2>&1
echo "== $(date -u +%FT%TZ) start; config $CONFIG; resume ${RESUME}"
nvidia-smi -L || true
[ -f "$RESUME" ] && [ ! -f "$CHECKPOINT" ] && cp "$RESUME" "$CHECKPOINT"
# --minutes counts the checkpoint's earlier training too: give this window what is left of it
# (1.5 min kept for the final validation and export). --restart: the window is a learning-rate
# cycle of its own (warm-up, then cosine from the config's peak); without it a checkpoint near
# the end of its CPU budget would train at the floor of its old cycle.
MINUTES=$($PY - "$CHECKPOINT" "$WALL_MIN" "$SECONDS" <<'PYEOF'
import os, sys, torch
path, wall, spent = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
prior = torch.load(path, map_location="cpu", weights_only=False)["seconds"] / 60 if os.path.exists(path) else 0.0
print(round(prior + max(1.0, wall - spent / 60 - 1.5), 2))
PYEOF
)
echo "== $(date -u +%T) training until $MINUTES min of training in all"
PYTHONUNBUFFERED=1 $PY -m lossless_bpg train --config "$CONFIG" --data "$BUNDLE/originals.npz" \
    --checkpoint "$CHECKPOINT" --minutes "$MINUTES" --restart --export lic --export-dir "$OUT/weights"
status=$?
echo "== $(date -u +%T) done (exit $status) after $SECONDS s"
ls -laR "$OUT"
exit $status
