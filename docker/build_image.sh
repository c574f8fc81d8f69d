#!/usr/bin/env bash
# Build the benchmark image (docker/Dockerfile) with no network inside the build:
#   1. a Docker engine (docker/engine.sh starts one where none runs);
#   2. the base image: made locally by docker/make_base.sh when it is the default and absent;
#   3. a wheelhouse of torch and the pinned runtime requirements, downloaded on this machine
#      (build/docker/wheelhouse; a second run downloads nothing);
#   4. the build context (build/docker/context): the package sources from this checkout, the
#      wheelhouse, and the libbpg / FLIF tarballs (checked against their pins by the build);
#   5. docker build, with --network none on the locally made base (Python packages come from the
#      wheelhouse in any case; only another base's missing Debian packages need the mirror).
# Usage: docker/build_image.sh [--image NAME] [--base IMAGE] [--sources DIR]
# Defaults: lossless-bpg, lossless-bpg-base:bookworm, ../shared/third_party ($PYTHON: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=lossless-bpg
DEFAULT_BASE=lossless-bpg-base:bookworm
BASE=$DEFAULT_BASE
SOURCES=../shared/third_party
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case $1 in
    --image) IMAGE=$2; shift 2 ;;
    --base) BASE=$2; shift 2 ;;
    --sources) SOURCES=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build_image: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
docker/engine.sh
if [ "$BASE" = "$DEFAULT_BASE" ]; then
  docker/make_base.sh "$BASE"
fi

# The release tarballs the build scripts pin (their TARBALL=... lines own the names).
tarballs=()
for pkg in libbpg flif; do
  tarball=$(sed -n 's/^TARBALL=//p' "third_party/$pkg/build.sh")
  [ -f "$SOURCES/$tarball" ] || { echo "build_image: $SOURCES/$tarball not found; give the folder holding the release tarballs with --sources DIR (see third_party/README.md)" >&2; exit 2; }
  tarballs+=("$SOURCES/$tarball")
done

wheelhouse=build/docker/wheelhouse
mkdir -p "$wheelhouse"
# The runtime dependencies named in pyproject.toml, pinned by requirements.lock; torch by itself
# first, as `make install` does (pip then takes the CPU wheel, never a CUDA build); setuptools
# builds the package inside the image.
mapfile -t runtime < <("$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
download() {  # quiet, but for errors (this machine's pip config warns of absent local indexes)
  "$PYTHON" -m pip download --quiet --disable-pip-version-check -d "$wheelhouse" "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
}
echo "build_image: wheelhouse $wheelhouse"
download torch==2.13.0
download -c requirements.lock "setuptools>=68" wheel torch==2.13.0 "${runtime[@]}"

context=build/docker/context
rm -rf "$context"
mkdir -p "$context/sources" "$context/third_party/libbpg" "$context/third_party/flif" "$context/docker"
cp pyproject.toml setup.py requirements.lock README.md MANIFEST.in "$context/"
# The package as it is in this checkout (what `pip install .` would take), without build outputs.
tar -c --exclude=__pycache__ --exclude='*.so' --exclude='*.pyc' lossless_bpg | tar -x -C "$context"
cp docker/entrypoint.sh "$context/docker/"
cp third_party/lib.sh "$context/third_party/"
cp third_party/libbpg/build.sh "$context/third_party/libbpg/"
cp third_party/flif/build.sh "$context/third_party/flif/"
cp "${tarballs[@]}" "$context/sources/"
cp -al "$wheelhouse" "$context/wheelhouse" 2>/dev/null || cp -a "$wheelhouse" "$context/wheelhouse"

# The locally made base holds every Debian package the build needs: no network at all. Another
# base (python:3.11-slim-bookworm) gets them from Debian's mirror in the build's first stage.
network=(--network none)
if [ "$BASE" != "$DEFAULT_BASE" ]; then
  network=()
fi
echo "build_image: docker build -t $IMAGE (base $BASE${network:+, no network}; libbpg's x265 takes minutes)"
build_start=$(date +%s)
docker build "${network[@]}" --build-arg BASE="$BASE" -f docker/Dockerfile -t "$IMAGE" "$context"
end=$(date +%s)
size=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}')
echo "build_image: $IMAGE built: docker build $(( end - build_start )) s, all steps $(( end - start )) s, $size"
