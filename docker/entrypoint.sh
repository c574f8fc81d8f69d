#!/usr/bin/env sh
# Benchmark every folder given (default /data) into $RESULTS (default /results).
# Extra options go to `bench` through $BENCH_ARGS, e.g. BENCH_ARGS="--workers 4 --codecs lbpg,webp".
set -eu
if [ "$#" -eq 0 ]; then set -- /data; fi
for d in "$@"; do
  if [ ! -d "$d" ]; then
    echo "lbpg-bench: dataset folder $d not found; mount one, e.g. -v /path/to/images:/data:ro" >&2
    exit 2
  fi
done
exec ${PYTHON:-python} -m lossless_bpg bench "$@" --out "${RESULTS:-/results}" ${BENCH_ARGS:-}
