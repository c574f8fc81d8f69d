#!/usr/bin/env bash
# Run the benchmark image on a folder of images with no network: results (table, CSV, plots)
# in the output folder, the run's time printed at the end.
#   docker/run_bench.sh IMAGES OUT [IMAGE]      (IMAGE default: lossless-bpg)
# Bench options through $BENCH_ARGS (default: 2 workers and the rows of the README's table).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
images=$1 out=$2 image=${3:-lossless-bpg}
[ -d "$images" ] || { echo "run_bench: image folder '$images' not found (make docker-bench IMAGES=path/to/folder)" >&2; exit 2; }
docker image inspect "$image" >/dev/null 2>&1 || { echo "run_bench: no image $image; run 'make docker' first" >&2; exit 2; }
mkdir -p "$out"
images=$(cd "$images" && pwd) out=$(cd "$out" && pwd)
: "${BENCH_ARGS:=--workers 2 --codecs lbpg,flif,bpg-lossless,jpegxl-e9,webp,png,jpeg2000}"
start=$(date +%s)
# As the calling user, so the results are theirs; HOME in the container's /tmp.
docker run --rm --network none --user "$(id -u):$(id -g)" -e HOME=/tmp -e BENCH_ARGS="$BENCH_ARGS" \
  -v "$images:/data:ro" -v "$out:/results" "$image"
echo "run_bench: finished in $(( $(date +%s) - start )) s; results in $out"
