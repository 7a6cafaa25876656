#!/usr/bin/env bash
# What builds for other platforms than the machine's need, in one folder (default
# /opt/buildopt-testbed/foreign, BUILDOPT_FOREIGN_ROOT):
#   busybox-ARCH/bin/busybox  Debian bookworm's busybox-static for arm64 and s390x: the root file
#                             systems of the base images buildopt-test/busybox-ARCH
#                             (tests/testbed/make-base-images.sh imports them)
#   qemu/usr/bin/qemu-aarch64  from Debian trixie's qemu-user (statically linked there; trixie's
#                             qemu-user-static is only links to it)
# and registers qemu-aarch64 with the kernel's binfmt_misc (mounting it when needed) with
# the F flag: the kernel opens the interpreter now, so it also runs arm64 programs inside
# containers, where the file does not exist. RUN steps for linux/arm64 then run on this amd64
# machine; s390x stays unregistered on purpose: the tests show what buildopt says about a
# platform the daemon cannot run (tests/integration/platforms.rs).
# The system's apt sources and state are not touched (apt reads a private sources list, as
# tests/testbed/install-docker28.sh does). Idempotent: files and registration already there are kept.
set -euo pipefail

root=${BUILDOPT_FOREIGN_ROOT:-/opt/buildopt-testbed/foreign}
mirror=${BUILDOPT_DOCKER28_MIRROR:-http://deb.debian.org/debian}
binfmt=/proc/sys/fs/binfmt_misc
say() { echo "foreign platforms: $*"; }

# shellcheck source=tests/testbed/apt.sh
. "$(dirname "$0")/apt.sh"
[ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring

# Downloads PACKAGE (as PACKAGE:ARCH) from SUITE and unpacks it into DEST.
fetch() {
  local suite=$1 arch=$2 package=$3 dest=$4 work
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror $suite main" \
    >"$work/sources.list"
  local apt_private=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o Dir::Etc::sourceparts=/nonexistent
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "APT::Architectures::=$arch"
    -o APT::Sandbox::User=root
  )
  say "downloading $package:$arch from Debian $suite"
  apt-get -qq "${apt_private[@]}" update
  (cd "$work/debs" && apt-get -qq "${apt_private[@]}" download "$package:$arch")
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  dpkg-deb -x "$work"/debs/*.deb "$dest.tmp"
  rm -rf "$work" "$dest"
  mv "$dest.tmp" "$dest"
}

for arch in arm64 s390x; do
  [ -x "$root/busybox-$arch/bin/busybox" ] || fetch bookworm "$arch" busybox-static "$root/busybox-$arch"
done
qemu=$root/qemu/usr/bin/qemu-aarch64
if [ ! -x "$qemu" ]; then
  fetch trixie amd64 qemu-user "$root/qemu"
  # Only the arm64 emulator is used; the package holds every other one too (450 MB).
  find "$root/qemu" ! -type d ! -path "$qemu" -delete
fi

[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
if [ -e "$binfmt/qemu-aarch64" ]; then
  say "qemu-aarch64 registered ($(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64"))"
else
  # The ELF header of a little-endian 64-bit aarch64 executable (e_machine 0xb7), and its mask.
  magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo ":qemu-aarch64:M::$magic:$mask:$qemu:F" >"$binfmt/register"
  say "qemu-aarch64 registered ($qemu, flag F)"
fi
