#!/usr/bin/env bash
# Train several residual-model configs at once on one GPU machine from a portable pack
# (python -m lossless_bpg train --make-portable ...), exporting each model into OUT.
#   scripts/train_gpu.sh PACK MINUTES OUT CONFIG.yaml [CONFIG.yaml ...]
set -u
PY=${PY:-python3}
pack=$1 minutes=$2 out=$3
shift 3
mkdir -p "$out"
nvidia-smi -L || true
$PY -c "import torch, PIL.features as f; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'webp', f.check('webp'))"
for cfg in "$@"; do
  name=$(basename "$cfg" .yaml)
  PYTHONUNBUFFERED=1 $PY -m lossless_bpg train --config "$cfg" --pack "$pack" \
    --checkpoint "/tmp/ckpt_$name.pt" --minutes "$minutes" --export "$name" --export-dir "$out" \
    > "/tmp/train_$name.log" 2>&1 &
done
wait
for cfg in "$@"; do
  name=$(basename "$cfg" .yaml)
  echo "== $name"
  tail -n 40 "/tmp/train_$name.log"
done > "$out/train_logs.txt"
cat "$out/train_logs.txt"
