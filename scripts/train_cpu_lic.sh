#!/usr/bin/env bash
# Background CPU training of the learned lossy layer (backend lic) and its residual model,
# resumable: run it again (same OUTDIR) and it continues from OUTDIR/checkpoint.pt.
#
#   nohup nice -n 10 scripts/train_cpu_lic.sh >> out/train_lic/train.log 2>&1 &
#
# Environment (optional): OUTDIR (out/train_lic), MINUTES (total training-time budget over all
# resumptions; the cosine decay follows it; default 600), THREADS (1), CONFIG
# (lossless_bpg/configs/lic.yaml), RESTART (1: resume with a new learning-rate cycle over the
# minutes MINUTES adds to the checkpoint's: `train --restart`; once: later resumptions without it go
# on with that cycle).
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUTDIR:-out/train_lic}
MINUTES=${MINUTES:-600}
THREADS=${THREADS:-1}
CONFIG=${CONFIG:-lossless_bpg/configs/lic.yaml}
RESTART_ARG=()
[ "${RESTART:-0}" = 1 ] && RESTART_ARG=(--restart)
mkdir -p "$OUTDIR"
echo "== $(date -u +%FT%TZ) training lic (pid $$), $CONFIG, checkpoint $OUTDIR/checkpoint.pt, budget $MINUTES min"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
exec .venv/bin/python -m lossless_bpg train --config "$CONFIG" \
    --checkpoint "$OUTDIR/checkpoint.pt" --minutes "$MINUTES" "${RESTART_ARG[@]}"
