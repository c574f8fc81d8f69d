#!/usr/bin/env bash
# Background CPU training of the generation 2 residual model, resumable: run it again (same
# OUTDIR) and it continues from OUTDIR/checkpoint.pt; it starts from the shipped fast model,
# grown function-preservingly, when there is no checkpoint yet.
#
#   nohup nice -n 10 scripts/train_cpu_v2.sh >> out/train_v2/train.log 2>&1 &
#
# Environment (optional): OUTDIR (out/train_v2), PACK (data/train_pack8.npz, built from
# ../shared/datasets/train when missing), MINUTES (total wall-time budget of the run, counted
# over all its resumptions; the learning rate's cosine decay follows it; default 480),
# WAIT_PID (a pack-building process to wait for first), THREADS (1), VALIDATE_FIRST (1: measure
# the starting model on the validation split first, ~10 min here; a grown model's equals fast's),
# RESTART (1: resume with a new learning-rate cycle over the minutes MINUTES adds to the
# checkpoint's: `train --restart`; once: later resumptions without it go on with that cycle),
# CONFIG (lossless_bpg/configs/context16_v2.yaml) and NAME (context16_v2, the export's name):
# generation 2's control, fast trained on without the new parts, is
#   CONFIG=lossless_bpg/configs/context16_fast_continue.yaml NAME=fast_continued OUTDIR=out/train_fast
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUTDIR:-out/train_v2}
PACK=${PACK:-data/train_pack8.npz}
MINUTES=${MINUTES:-480}
THREADS=${THREADS:-1}
CONFIG=${CONFIG:-lossless_bpg/configs/context16_v2.yaml}
NAME=${NAME:-context16_v2}
FIRST=()
[ "${VALIDATE_FIRST:-0}" = 1 ] && FIRST=(--validate-first)
RESTART_ARG=()
[ "${RESTART:-0}" = 1 ] && RESTART_ARG=(--restart)
mkdir -p "$OUTDIR"
if [ -n "${WAIT_PID:-}" ]; then
  echo "== $(date -u +%FT%TZ) waiting for process $WAIT_PID (building $PACK)"
  while kill -0 "$WAIT_PID" 2>/dev/null; do sleep 30; done
fi
echo "== $(date -u +%FT%TZ) training (pid $$), $CONFIG, checkpoint $OUTDIR/checkpoint.pt, budget $MINUTES min"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
exec .venv/bin/python -m lossless_bpg train --config "$CONFIG" \
    --pack "$PACK" --checkpoint "$OUTDIR/checkpoint.pt" --minutes "$MINUTES" \
    --init-from lossless_bpg/weights/2c7ee67f527c3930.pt "${FIRST[@]}" "${RESTART_ARG[@]}" \
    --export "$NAME" --export-dir "$OUTDIR"
