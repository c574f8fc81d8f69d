#!/usr/bin/env bash
# Make the Docker base image locally, for machines that reach Debian's package mirror but no
# image registry: debootstrap a minimal Debian bookworm holding Python and every Debian package
# the image's build needs (so that the build itself runs with no network), then `docker import`
# it. Does nothing when the image exists already.
#   docker/make_base.sh [IMAGE]          (default lossless-bpg-base:bookworm)
# Environment: DEBIAN_MIRROR (default: the first bookworm mirror in this machine's apt sources,
# else http://deb.debian.org/debian).
set -euo pipefail
IMAGE=${1:-lossless-bpg-base:bookworm}
# Kept in step with docker/Dockerfile's DEBIAN_PACKAGES, plus Debian's Python (the Dockerfile
# uses whatever python3 the base has: Debian's here, python.org's in python:3.11-slim).
PACKAGES=python3,python3-venv,python3-dev,ca-certificates,build-essential,cmake,yasm,pkg-config,libpng-dev,zlib1g-dev,libjpeg-dev,optipng

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "make_base: $IMAGE exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "make_base: debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 4; }
[ "$(id -u)" -eq 0 ] || { echo "make_base: debootstrap needs root" >&2; exit 4; }

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # Active entries only: "URIs: URL" (deb822 .sources files) or "deb URL bookworm ..." lines.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
           | sed -nE 's#^(URIs:|deb)[[:space:]]+(https?://[^[:space:]]+/debian)/?([[:space:]].*)?$#\2#p' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/lbpg-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
echo "make_base: debootstrap bookworm from $mirror (a few minutes)"
start=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2; echo "make_base: debootstrap failed (log: $rootfs.log)" >&2; exit 1; }
rm -f "$rootfs.log"
# An image has no use for the package lists and caches; apt in a container built from it needs
# the mirror recorded.
echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "make_base: $IMAGE made in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
