# shellcheck shell=bash
# Shared by third_party/<package>/build.sh (sourced, not run). Each build script sets
#   PKG, PKG_VERSION, TARBALL, PINNED_SHA256, BINARIES (array), BUILD_MINUTES
# and defines  pkg_requirements  (calls need_cmd / need_header / need_pkgconfig)  and
# pkg_build SRC_DIR OUT_BIN_DIR  (builds and copies BINARIES into OUT_BIN_DIR; it runs where
# errexit is off, so it must chain its steps with && and return their status),
# then calls  tp_main "$@".
#
# What a run does, in order:
#   1. find the source tarball (--source FILE|DIR|URL; default ../shared/third_party/ next to
#      the checkout) and check its sha256 against the pin: a wrong file stops here, and so does a
#      missing one unless step 2 or 3 needs no source;
#   2. if PREFIX/bin already holds the binaries of this sha256 (a stamp says so): nothing to do;
#   3. if the build cache (~/.cache/lossless_bpg/third_party/<sha256>/) has them: copy them;
#   4. else check the build tools, naming every missing one and the apt-get line that fixes
#      it; build in a temporary folder; store the result in the cache; install it.
# Exit status: 0 done or nothing to do, 2 usage, 3 source missing or wrong sha256,
# 4 build tools missing, 5 the build itself failed.

set -euo pipefail

# Bump when a build.sh changes how it builds: stamps and cache entries of older recipes are then
# rebuilt instead of reused.
RECIPE=1

TP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TP_DIR/.." && pwd)

say() { printf '%s: %s\n' "$PKG" "$*" >&2; }
die() { local code=$1; shift; printf '%s: error: %s\n' "$PKG" "$*" >&2; exit "$code"; }

tp_usage() {
  cat <<EOF
usage: $0 [--source FILE|DIR|URL] [--prefix DIR] [--cache DIR] [--no-cache] [--jobs N]
          [--sha256 HEX] [--check] [--verbose]

Builds $PKG $PKG_VERSION (${BINARIES[*]}) from its pinned source into PREFIX/bin.

  --source   the release tarball $TARBALL, a folder holding it, or an http(s)/file URL
             (default: \$LBPG_THIRD_PARTY_SOURCES, else $REPO_ROOT/../shared/third_party)
  --prefix   install into DIR/bin (default: \$LBPG_THIRD_PARTY_PREFIX, else
             $REPO_ROOT/third_party/local, which git ignores and lossless_bpg looks in)
  --cache    build cache shared by every clone (default: \$LBPG_THIRD_PARTY_CACHE, else
             \${XDG_CACHE_HOME:-~/.cache}/lossless_bpg/third_party); builds are kept by sha256
  --no-cache neither reuse nor store a cached build
  --jobs     parallel compile jobs (default: the number of CPUs)
  --sha256   expect this sha256 instead of the pinned one ($PINNED_SHA256)
  --check    check the source and the build tools only; build nothing
  --verbose  show the compiler's output (default: written to a log, its end shown on failure)
EOF
}

tp_parse_args() {
  SOURCE=${LBPG_THIRD_PARTY_SOURCES:-$REPO_ROOT/../shared/third_party}
  PREFIX=${LBPG_THIRD_PARTY_PREFIX:-$REPO_ROOT/third_party/local}
  CACHE=${LBPG_THIRD_PARTY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lossless_bpg/third_party}
  USE_CACHE=1 CHECK_ONLY=0 VERBOSE=0 EXPECTED_SHA256=$PINNED_SHA256
  JOBS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  while [ $# -gt 0 ]; do
    case $1 in
      --source|--prefix|--cache|--jobs|--sha256)
        [ $# -ge 2 ] || { tp_usage >&2; die 2 "$1 needs a value"; }
        case $1 in
          --source) SOURCE=$2 ;; --prefix) PREFIX=$2 ;; --cache) CACHE=$2 ;;
          --jobs) JOBS=$2 ;; --sha256) EXPECTED_SHA256=$2 ;;
        esac
        shift 2 ;;
      --no-cache) USE_CACHE=0; shift ;;
      --check) CHECK_ONLY=1; shift ;;
      --verbose) VERBOSE=1; shift ;;
      -h|--help) tp_usage; exit 0 ;;
      *) tp_usage >&2; die 2 "unknown argument $1" ;;
    esac
  done
  case $JOBS in ''|*[!0-9]*|0) die 2 "--jobs needs a positive number, not '$JOBS'" ;; esac
  case $EXPECTED_SHA256 in
    *[!0-9a-f]*|'') die 2 "--sha256 needs 64 lowercase hex digits" ;;
  esac
  [ ${#EXPECTED_SHA256} -eq 64 ] || die 2 "--sha256 needs 64 lowercase hex digits"
  case $PREFIX in /*) ;; *) PREFIX=$PWD/$PREFIX ;; esac  # absolute, without creating it yet
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

# Sets TARBALL_PATH to a local copy of the source whose sha256 is the expected one.
tp_fetch_source() {
  local where=$SOURCE
  case $where in
    http://*|https://*|file://*)
      local dl="$CACHE/downloads" part
      mkdir -p "$dl"
      TARBALL_PATH="$dl/$EXPECTED_SHA256-$TARBALL"
      if [ ! -f "$TARBALL_PATH" ] || [ "$(sha256_of "$TARBALL_PATH")" != "$EXPECTED_SHA256" ]; then
        part="$TARBALL_PATH.part.$$"
        say "downloading $where"
        if command -v curl >/dev/null 2>&1; then
          curl -fsSL -o "$part" "$where" || { rm -f "$part"; die 3 "cannot download $where"; }
        elif command -v wget >/dev/null 2>&1; then
          wget -q -O "$part" "$where" || { rm -f "$part"; die 3 "cannot download $where"; }
        else
          die 3 "cannot download $where: neither curl nor wget is installed (apt-get install -y curl)"
        fi
        mv -f "$part" "$TARBALL_PATH"
      fi ;;
    *)
      if [ -d "$where" ]; then TARBALL_PATH="$where/$TARBALL"; else TARBALL_PATH=$where; fi
      if [ ! -f "$TARBALL_PATH" ]; then
        # Nothing to build: a stamp or the cache already holds this sha256's build (checked
        # when it was built), e.g. a fresh clone without ../shared beside it.
        if [ "$CHECK_ONLY" = 0 ] && { tp_up_to_date || tp_cached; }; then
          say "source $TARBALL_PATH not found; not needed: this sha256 is already built"
          TARBALL_PATH=""
          return 0
        fi
        die 3 "source $TARBALL_PATH not found; pass --source with the release tarball \
$TARBALL (sha256 $EXPECTED_SHA256), a folder holding it, or its URL"
      fi ;;
  esac
  local got
  got=$(sha256_of "$TARBALL_PATH")
  [ "$got" = "$EXPECTED_SHA256" ] || die 3 "$TARBALL_PATH has sha256 $got, expected \
$EXPECTED_SHA256 ($PKG $PKG_VERSION): refusing to build from it"
}

# --- build requirements: each records what is missing and which Debian package provides it ----
MISSING=() MISSING_APT=()
_missing() { MISSING+=("$1"); case " ${MISSING_APT[*]-} " in *" $2 "*) ;; *) MISSING_APT+=("$2") ;; esac; }
need_cmd() {  # need_cmd COMMAND DEBIAN_PACKAGE [WHAT]
  command -v "$1" >/dev/null 2>&1 || _missing "${3:-$1}" "$2"
}
need_header() {  # need_header COMPILER HEADER DEBIAN_PACKAGE [WHAT]
  command -v "$1" >/dev/null 2>&1 || return 0  # the missing compiler is reported by need_cmd
  # a here-string, not a pipe: a compiler that exits early must not fail the check by SIGPIPE
  "$1" -E -x c - >/dev/null 2>&1 <<<"#include <$2>" || _missing "${4:-$2 (headers)}" "$3"
}
need_pkgconfig() {  # need_pkgconfig MODULE DEBIAN_PACKAGE [WHAT]
  command -v pkg-config >/dev/null 2>&1 || return 0
  pkg-config --exists "$1" 2>/dev/null || _missing "${3:-$1 (pkg-config module)}" "$2"
}

tp_check_requirements() {
  pkg_requirements
  [ ${#MISSING[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo "
  {
    printf '%s: cannot build %s %s, missing: ' "$PKG" "$PKG" "$PKG_VERSION"
    local i
    for i in "${!MISSING[@]}"; do
      [ "$i" -eq 0 ] || printf ', '
      printf '%s' "${MISSING[$i]}"
    done
    printf '\n'
    printf '%s: on Debian/Ubuntu: %sapt-get install -y %s\n' "$PKG" "$sudo" "${MISSING_APT[*]}"
  } >&2
  exit 4
}

# --- stamp and cache ---------------------------------------------------------------------------
stamp_key() { printf '%s %s recipe %s\n' "$PKG" "$EXPECTED_SHA256" "$RECIPE"; }
STAMP() { printf '%s/.stamps/%s' "$PREFIX" "$PKG"; }

binaries_in() {  # binaries_in DIR: all BINARIES present and executable there
  local b
  for b in "${BINARIES[@]}"; do [ -x "$1/$b" ] || return 1; done
}

tp_up_to_date() {
  [ -f "$(STAMP)" ] && [ "$(cat "$(STAMP)")" = "$(stamp_key)" ] && binaries_in "$PREFIX/bin"
}

tp_install_from() {  # tp_install_from BIN_DIR: copy the binaries into PREFIX/bin, then stamp
  local b
  mkdir -p "$PREFIX/bin" "$PREFIX/.stamps"
  for b in "${BINARIES[@]}"; do
    cp -f "$1/$b" "$PREFIX/bin/$b.tmp.$$" && chmod 755 "$PREFIX/bin/$b.tmp.$$"
    mv -f "$PREFIX/bin/$b.tmp.$$" "$PREFIX/bin/$b"
  done
  stamp_key > "$(STAMP).tmp.$$" && mv -f "$(STAMP).tmp.$$" "$(STAMP)"
}

tp_cached() {  # a complete cache entry of this sha256 and recipe
  local entry="$CACHE/$EXPECTED_SHA256"
  [ "$USE_CACHE" = 1 ] && [ -f "$entry/complete" ] \
    && [ "$(cat "$entry/complete")" = "$(stamp_key)" ] && binaries_in "$entry/bin"
}

tp_main() {
  tp_parse_args "$@"
  tp_fetch_source
  [ -z "$TARBALL_PATH" ] || say "source $TARBALL_PATH: sha256 $EXPECTED_SHA256 checked"
  if [ "$CHECK_ONLY" = 1 ]; then
    tp_check_requirements
    say "every build tool is present"
    return 0
  fi
  if tp_up_to_date; then
    say "${BINARIES[*]} of this source already in $PREFIX/bin: nothing to do"
    return 0
  fi
  if tp_cached; then
    tp_install_from "$CACHE/$EXPECTED_SHA256/bin"
    say "installed ${BINARIES[*]} into $PREFIX/bin from the build cache $CACHE/$EXPECTED_SHA256"
    return 0
  fi
  tp_check_requirements

  local work log
  work=$(mktemp -d "${TMPDIR:-/tmp}/lbpg-$PKG-XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  log="$PREFIX/.stamps/$PKG-build.log"
  mkdir -p "$PREFIX/.stamps" "$work/src" "$work/bin"
  tar -xzf "$TARBALL_PATH" -C "$work/src" || die 5 "cannot unpack $TARBALL_PATH"
  local top
  top=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -n "$top" ] || die 5 "$TARBALL_PATH holds no source folder"
  say "building $PKG $PKG_VERSION with $JOBS jobs (about $BUILD_MINUTES min on 2 cores); log: $log"
  local t0=$SECONDS status=0
  if [ "$VERBOSE" = 1 ]; then
    (pkg_build "$top" "$work/bin") 2>&1 | tee "$log" || status=$?  # pipefail: the build's status
  else
    (pkg_build "$top" "$work/bin") >"$log" 2>&1 || status=$?
  fi
  if [ "$status" != 0 ] || ! binaries_in "$work/bin"; then
    tail -n 30 "$log" >&2 || true
    die 5 "the build failed (status $status); full log: $log"
  fi
  say "built in $((SECONDS - t0)) s"
  if [ "$USE_CACHE" = 1 ]; then
    local entry="$CACHE/$EXPECTED_SHA256" tmp
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.tmp-XXXXXX")
    cp -R "$work/bin" "$tmp/bin"
    stamp_key > "$tmp/complete"
    rm -rf "$entry"
    mv "$tmp" "$entry" || rm -rf "$tmp"  # another build may have stored the same entry meanwhile
    say "cached in $entry"
  fi
  tp_install_from "$work/bin"
  say "installed ${BINARIES[*]} into $PREFIX/bin"
}
