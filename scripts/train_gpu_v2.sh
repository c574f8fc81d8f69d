#!/usr/bin/env bash
# One GPU window, one call: the generation 2 residual model trained from committed weights on
# HEVC reconstructions made on the GPU machine's own CPU cores at every Q of the config.
#
# Prepared here (CPU machine), once; data/ is git-ignored, so the call carries it:
#   python -m lossless_bpg.train.gpu_bundle make --data ../shared/datasets/train --out data/gpu_bundle --max-mb 50
#   (cd data/gpu_bundle && mkdir -p debs && cd debs && apt-get download x265 libx265-199 libnuma1)
# The call sends at most 64 MiB: run `scripts/device_tree.py stash` first (training_runs/README.md).
# Invoked on the device machine (tool `run`, carry ["data/gpu_bundle"], timeout_s 600):
#   bash scripts/train_gpu_v2.sh
# Environment (all optional):
#   INIT      weights to start from (default: the `default` model's committed .pt, generation 2
#             since 0.5.0, so every window builds on the shipped weights; the fast model's .pt
#             would be grown function-preservingly)
#   CONFIG    training YAML (default lossless_bpg/configs/context16_v2_gpu.yaml)
#   WALL_MIN  minutes of wall time for the whole script (default 8.5; the run tool allows 10)
#   OUT       where the checkpoint, log and exported model go (the run tool sets it)
# Dry run on the 2-core CPU (2026-11-30, a 6 MB bundle of 82 crops, PY=.venv/bin/python,
# WALL_MIN=6): x265 from the .debs, reconstructions at 8 Q in 2.7 min, training from gen2's .pt
# (159/159 tensors taken; validation as gen2's card), export: exit 0. Making the 50 MB bundle
# takes ~20 min of this CPU: start it before the first device call (device time is not spent).
# Writes to $OUT: train.log, checkpoint.pt (resumable: copy it back and pass CHECKPOINT=...),
# context16_v2.pt + context16_v2.yaml (the exported model with its training record).
set -u -o pipefail
OUT=${OUT:-out/gpu}
PY=${PY:-python3}
INIT=${INIT:-$($PY -c "from lossless_bpg.residual.registry import Registry; print(Registry().card('default').card_path.with_suffix('.pt'))")}
CONFIG=${CONFIG:-lossless_bpg/configs/context16_v2_gpu.yaml}
BUNDLE=${BUNDLE:-data/gpu_bundle}
WALL_MIN=${WALL_MIN:-8.5}
CHECKPOINT=${CHECKPOINT:-$OUT/checkpoint.pt}
PACK=/tmp/gpu_pack.npz
mkdir -p "$OUT"
exec > >(tee -a "$OUT/train.log") 2>&1
echo "== $(date -u +%FT%TZ) start; init $INIT; config $CONFIG"
nvidia-smi -L || true
$PY -c "import torch, PIL.features as f; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'webp', f.check('webp'))"

# x265 from the shipped .deb files (unpacked beside, not into /).
mkdir -p /tmp/x265
for f in "$BUNDLE"/debs/*.deb; do dpkg -x "$f" /tmp/x265; done
export LD_LIBRARY_PATH=/tmp/x265/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
/tmp/x265/usr/bin/x265 --version 2>&1 | head -1

# Reconstructions at every Q of the config, on all CPU cores.
QS=$($PY -c "import yaml, sys; print(' '.join(map(str, yaml.safe_load(open(sys.argv[1]))['qs'])))" "$CONFIG")
echo "== $(date -u +%T) reconstructions at Q $QS"
$PY -m lossless_bpg.train.gpu_bundle reconstruct "$BUNDLE" --x265 /tmp/x265/usr/bin/x265 --qs $QS \
    --workers "$(nproc)" --out "$PACK" || exit 1

# Train for what is left of the window (2 min kept for the final validation and export).
MINUTES=$($PY -c "import sys; print(max(1.0, float(sys.argv[1]) - int(sys.argv[2]) / 60 - 2.0))" "$WALL_MIN" "$SECONDS")
echo "== $(date -u +%T) training for $MINUTES min"
PYTHONUNBUFFERED=1 $PY -m lossless_bpg train --config "$CONFIG" --pack "$PACK" --checkpoint "$CHECKPOINT" \
    --minutes "$MINUTES" --init-from "$INIT" --export context16_v2 --export-dir "$OUT"
status=$?
echo "== $(date -u +%T) done (exit $status) after $SECONDS s"
ls -la "$OUT"
exit $status
