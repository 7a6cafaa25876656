#!/bin/sh
# Packages one buildopt binary as a release archive, in the layout dist/install.sh unpacks, and
# prints its line for dist/checksums.txt. Used by .github/workflows/release.yml for every target.
#
#   sh dist/package.sh VERSION TARGET BINARY OUTDIR
#
#   VERSION  the release version, e.g. 0.1.0 (a leading v is dropped)
#   TARGET   one of the target triples dist/install.sh knows
#   BINARY   the built buildopt binary for TARGET
#   OUTDIR   where the archive goes (created when missing)
#
# Writes OUTDIR/buildopt-<version>-<target>.tar.gz, holding the folder buildopt-<version>-<target>/
# with buildopt (mode 755) and README.md, and OUTDIR/buildopt-<version>-<target>.tar.gz.sha256, one
# line in sha256sum format ("<hex>  <file name>"), which is also printed on stdout. With GNU tar
# the archive is reproducible: entries sorted, owned by 0:0, timestamped SOURCE_DATE_EPOCH (when
# set), and gzip stores no name or time. Nothing is left in OUTDIR when a step fails.
set -eu

say() { printf 'buildopt package: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

[ "$#" -eq 4 ] || die "usage: package.sh VERSION TARGET BINARY OUTDIR"
version=${1#v}
target=$2
binary=$3
outdir=$4

[ -n "$version" ] || die "the version is empty"
case "$version" in
  *[!0-9A-Za-z.+-]*) die "invalid version '$version'" ;;
esac
case "$target" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu | x86_64-unknown-linux-musl | \
    aarch64-unknown-linux-musl | x86_64-apple-darwin | aarch64-apple-darwin) ;;
  *) die "unsupported target '$target' (dist/install.sh would not install it)" ;;
esac
[ -f "$binary" ] || die "no binary at '$binary'"
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  case "$SOURCE_DATE_EPOCH" in
    *[!0-9]*) die "SOURCE_DATE_EPOCH '$SOURCE_DATE_EPOCH' is not a number of seconds" ;;
  esac
fi

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
readme="$script_dir/../README.md"
[ -f "$readme" ] || die "no README.md beside dist/"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{print $1}'
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | awk '{print $1}'
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 "$1" | awk '{print $NF}'
  else
    die "no sha256sum, shasum or openssl to hash the archive with"
  fi
}

name="buildopt-$version-$target"
archive="$name.tar.gz"
mkdir -p "$outdir"
outdir=$(CDPATH='' cd -- "$outdir" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/buildopt-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
trap 'exit 1' HUP INT TERM

mkdir "$stage/$name"
cp "$binary" "$stage/$name/buildopt"
cp "$readme" "$stage/$name/README.md"
chmod 755 "$stage/$name" "$stage/$name/buildopt"
chmod 644 "$stage/$name/README.md"

# GNU tar can make the archive reproducible; other tars (bsdtar on macOS) write it plainly.
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  set -- --sort=name --owner=0 --group=0 --numeric-owner
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    set -- "$@" --mtime="@$SOURCE_DATE_EPOCH"
  fi
else
  set --
fi
tar -C "$stage" "$@" -cf "$stage/$name.tar" "$name" || die "tar failed"
gzip -n <"$stage/$name.tar" >"$stage/$archive" || die "gzip failed"

line="$(sha256_of "$stage/$archive")  $archive"
printf '%s\n' "$line" >"$stage/$archive.sha256"
# The archive first, its checksum line last: a listed checksum always names a complete archive.
mv "$stage/$archive" "$outdir/$archive"
mv "$stage/$archive.sha256" "$outdir/$archive.sha256"
say "packaged $outdir/$archive"
printf '%s\n' "$line"
