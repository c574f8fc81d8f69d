#!/usr/bin/env bash
# Builds FLIF's command-line tool `flif` (a benchmark baseline) from the pinned release into
# third_party/local/bin. `--help` lists the options; see third_party/README.md.
# shellcheck disable=SC2034  # read by lib.sh
PKG=flif
PKG_VERSION=0.4
TARBALL=flif-0.4.tar.gz
PINNED_SHA256=486ea70fb38088ab0ce1fc4a43ac271c8a0de52369cc396a1d14f95ba8493de8
BINARIES=(flif)
BUILD_MINUTES=1

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

pkg_requirements() {
  need_cmd make build-essential
  need_cmd g++ build-essential
  need_cmd pkg-config pkg-config
  need_pkgconfig libpng libpng-dev "libpng headers (pkg-config libpng)"
  need_pkgconfig zlib zlib1g-dev "zlib headers (pkg-config zlib)"
}

pkg_build() {  # SRC_DIR OUT_BIN_DIR
  local src=$1 out=$2
  make -C "$src/src" -j "$JOBS" flif \
    && cp "$src/src/flif" "$out/" \
    && { "$out/flif" -V 2>&1 || true; } | grep -q "FLIF (Free Lossless Image Format) $PKG_VERSION"
}

tp_main "$@"
