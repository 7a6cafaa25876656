#!/bin/sh
# Installs a prebuilt buildopt binary, verified by SHA-256, into a tool cache, and prints the
# folder that holds it. Used by action.yml; works on any Linux or macOS machine.
#
#   BUILDOPT_VERSION        the version to install, e.g. 0.1.0 (a leading v is dropped); default:
#                           the newest version BUILDOPT_CHECKSUMS pins for this target
#   BUILDOPT_SHA256         the archive's SHA-256; default: its line in BUILDOPT_CHECKSUMS
#   BUILDOPT_CHECKSUMS      checksum file in sha256sum format (default: checksums.txt beside this
#                           script, which pins every released version)
#   BUILDOPT_TARGET         the target triple (default: detected, see below)
#   BUILDOPT_DOWNLOAD_BASE  where releases live (default: GitHub releases of buildopt/buildopt);
#                           https only, except a loopback http:// URL (tests)
#   RUNNER_TOOL_CACHE       installs into $RUNNER_TOOL_CACHE/buildopt/<version>/<target> when set,
#                           else into ${XDG_CACHE_HOME:-$HOME/.cache}/buildopt/<version>/<target>
#   GITHUB_PATH             when set, the folder is appended to it (later steps find buildopt)
#
# The archive is buildopt-<version>-<target>.tar.gz from <base>/v<version>/, holding the buildopt
# binary at its top or in one top folder. Nothing is installed unless its checksum is known and
# matches: an unknown version without BUILDOPT_SHA256, a wrong checksum or a failed download
# exits non-zero and leaves the tool cache as it was. The install is atomic (a temporary folder
# renamed into place) and keeps the verified archive; a later run reuses the install without a
# download only when that archive still has the checksum and holds the very same binary.
set -eu

say() { printf 'buildopt install: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

detect_target() {
  os=$(uname -s)
  machine=$(uname -m)
  case "$machine" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) die "no prebuilt buildopt for the CPU '$machine' (build it with cargo install)" ;;
  esac
  case "$os" in
    Linux)
      libc=gnu
      if [ -e /etc/alpine-release ] || (ldd --version 2>&1 | grep -qi musl); then
        libc=musl
      fi
      printf '%s-unknown-linux-%s\n' "$arch" "$libc"
      ;;
    Darwin) printf '%s-apple-darwin\n' "$arch" ;;
    *) die "no prebuilt buildopt for the OS '$os' (Linux and macOS only)" ;;
  esac
}

target=${BUILDOPT_TARGET:-}
[ -n "$target" ] || target=$(detect_target)
case "$target" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu | x86_64-unknown-linux-musl | \
    aarch64-unknown-linux-musl | x86_64-apple-darwin | aarch64-apple-darwin) ;;
  *) die "unsupported target '$target'" ;;
esac
checksums=${BUILDOPT_CHECKSUMS:-$script_dir/checksums.txt}

# The newest version with a pinned archive for this target: each release of this script can
# only pin the releases before it, so "the default" is the newest one it can verify.
newest_pinned() {
  [ -f "$checksums" ] || return 0
  awk -v suffix="-$target.tar.gz" '
    /^[[:space:]]*#/ { next }
    {
      name = $2; sub(/^\*/, "", name)
      if (index(name, "buildopt-") == 1 && substr(name, length(name) - length(suffix) + 1) == suffix) {
        print substr(name, 10, length(name) - 9 - length(suffix))
      }
    }' "$checksums" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1
}

version=${BUILDOPT_VERSION:-}
version=${version#v}
if [ -z "$version" ]; then
  version=$(newest_pinned)
  [ -n "$version" ] || die "no version of buildopt for $target is pinned in $checksums yet; set BUILDOPT_VERSION and BUILDOPT_SHA256 (the action's version and sha256 inputs) to the release and its checksum"
  say "installing buildopt $version, the newest version pinned in $checksums"
fi
case "$version" in
  *[!0-9A-Za-z.+-]*) die "invalid version '$version'" ;;
esac
archive="buildopt-$version-$target.tar.gz"

expected=${BUILDOPT_SHA256:-}
if [ -z "$expected" ] && [ -f "$checksums" ]; then
  expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1; exit }' "$checksums")
fi
[ -n "$expected" ] || die "no checksum pinned for $archive in $checksums; set BUILDOPT_SHA256 to the archive's SHA-256 from the release page"
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
case "$expected" in
  *[!0-9a-f]*) die "the expected SHA-256 '$expected' is not hexadecimal" ;;
esac
[ "${#expected}" -eq 64 ] || die "the expected SHA-256 '$expected' is not 64 hex digits"

if [ -n "${RUNNER_TOOL_CACHE:-}" ]; then
  cache_root=$RUNNER_TOOL_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache_root=$XDG_CACHE_HOME
else
  [ -n "${HOME:-}" ] || die "neither RUNNER_TOOL_CACHE, XDG_CACHE_HOME nor HOME is set"
  cache_root=$HOME/.cache
fi
parent="$cache_root/buildopt/$version"
dest="$parent/$target"

publish() {
  if [ -n "${GITHUB_PATH:-}" ]; then
    printf '%s\n' "$dest" >>"$GITHUB_PATH"
  fi
  printf '%s\n' "$dest"
}

base=${BUILDOPT_DOWNLOAD_BASE:-https://github.com/buildopt/buildopt/releases/download}
base=${base%/}
case "$base" in
  https://*) protocols='=https' ;;
  http://127.* | http://localhost:* | http://localhost/* | http://localhost | http://\[::1\]*)
    protocols='=http' ;;
  *) die "refusing to download from '$base': https only (http only for loopback addresses)" ;;
esac
url="$base/v$version/$archive"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{print $1}'
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | awk '{print $1}'
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 "$1" | awk '{print $NF}'
  else
    die "no sha256sum, shasum or openssl to verify the download with"
  fi
}

download() {
  if command -v curl >/dev/null 2>&1; then
    curl --fail --silent --show-error --location --proto "$protocols" --proto-redir "$protocols" \
      --retry 3 --retry-delay 2 --connect-timeout 20 --max-time 600 --output "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    if [ "$protocols" = '=https' ]; then
      wget --quiet --https-only --tries=3 --timeout=60 --output-document="$2" "$1"
    else
      wget --quiet --tries=3 --timeout=60 --output-document="$2" "$1"
    fi
  else
    die "neither curl nor wget is installed"
  fi
}

mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The tool cache can be written by other jobs on the same runner, so an earlier install is
# trusted only through the archive kept beside it: when that archive still has the expected
# checksum, its binary is unpacked again and must be byte for byte the installed one. A marker
# file alone proves nothing (whoever swaps the binary can rewrite it too).
kept="$dest/.archive.tar.gz"
if [ -f "$kept" ] && [ ! -L "$kept" ] && [ "$(sha256_of "$kept")" = "$expected" ]; then
  cp "$kept" "$tmp/$archive"
  from_cache=1
else
  say "downloading $url"
  download "$url" "$tmp/$archive" || die "download failed: $url"
  actual=$(sha256_of "$tmp/$archive")
  [ "$actual" = "$expected" ] || die "checksum mismatch for $archive: expected $expected, got $actual; nothing installed"
  from_cache=0
fi

mkdir "$tmp/root"
tar -xzf "$tmp/$archive" -C "$tmp/root" || die "could not extract $archive"
# A regular file, not a link: a link would make the chmod below and the install point elsewhere.
if [ -f "$tmp/root/buildopt" ] && [ ! -L "$tmp/root/buildopt" ]; then
  unpacked="$tmp/root"
elif [ -f "$tmp/root/buildopt-$version-$target/buildopt" ] &&
  [ ! -L "$tmp/root/buildopt-$version-$target" ] &&
  [ ! -L "$tmp/root/buildopt-$version-$target/buildopt" ]; then
  unpacked="$tmp/root/buildopt-$version-$target"
else
  die "$archive holds no buildopt binary (a regular file named buildopt)"
fi

if [ "$from_cache" = 1 ] && [ -x "$dest/buildopt" ] && [ ! -L "$dest/buildopt" ] &&
  cmp -s "$unpacked/buildopt" "$dest/buildopt"; then
  say "reusing $dest (verified against its archive)"
  publish
  exit 0
fi
[ "$from_cache" = 0 ] || say "the install in $dest does not match its verified archive; replacing it"

chmod 755 "$unpacked/buildopt"
printf '%s\n' "$expected" >"$unpacked/.sha256"
mv "$tmp/$archive" "$unpacked/.archive.tar.gz"

# A previous install that failed verification is replaced; the rename is the commit point.
if [ -e "$dest" ] || [ -L "$dest" ]; then
  mv "$dest" "$tmp/old"
fi
mv "$unpacked" "$dest"
say "installed buildopt $version ($target) into $dest"
publish
