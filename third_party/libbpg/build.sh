#!/usr/bin/env bash
# Builds libbpg's bpgenc and bpgdec (the BPG baseline and the `bpg` lossy backend) from the pinned
# release into third_party/local/bin. `--help` lists the options; see third_party/README.md.
# shellcheck disable=SC2034  # read by lib.sh
PKG=libbpg
PKG_VERSION=0.9.8
TARBALL=libbpg-0.9.8.tar.gz
PINNED_SHA256=9c251a4aa72fbbb0ece6f649ac2a76e0d2765607df556614d6bb151619246e8f
BINARIES=(bpgenc bpgdec)
BUILD_MINUTES=6  # x265 is compiled three times (8, 10 and 12 bit)

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

pkg_requirements() {
  need_cmd make build-essential
  need_cmd gcc build-essential
  need_cmd g++ build-essential
  need_cmd cmake cmake "cmake (builds the bundled x265)"
  need_cmd yasm yasm "yasm (the bundled x265's assembler)"
  need_header gcc png.h libpng-dev "libpng headers (png.h)"
  need_header gcc jpeglib.h libjpeg-dev "libjpeg headers (jpeglib.h)"
}

pkg_build() {  # SRC_DIR OUT_BIN_DIR
  local src=$1 out=$2
  # bpgdec.c calls memset/strcasecmp without declaring them, an error since GCC 14: declare them
  # (no effect on older compilers).
  if ! grep -q '^#include <string.h>' "$src/bpgdec.c"; then
    sed -i 's|^#include <stdio.h>$|#include <stdio.h>\n#include <string.h>\n#include <strings.h>|' \
      "$src/bpgdec.c" || return 1
  fi
  # The bundled x265 asks for an old CMake policy level, which CMake >= 4 refuses without this
  # (older CMake ignores the variable). No viewer: it would need SDL.
  CMAKE_POLICY_VERSION_MINIMUM=3.5 make -C "$src" USE_BPGVIEW= -j "$JOBS" bpgenc bpgdec \
    && cp "$src/bpgenc" "$src/bpgdec" "$out/" \
    && { "$out/bpgenc" -h 2>&1 || true; } | grep -q "version $PKG_VERSION"
}

tp_main "$@"
