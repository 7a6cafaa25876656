#!/usr/bin/env bash
# Makes the base images the tests and the example repository build FROM, without any registry:
#   buildopt-test/busybox:latest        a busybox-static root file system (a few MB, seconds)
#   buildopt-test/busybox-arm64:latest  the same for linux/arm64, and busybox-s390x for
#                                       linux/s390x (tests/testbed/foreign-platforms.sh fetches
#                                       them and registers the arm64 emulator); not on Docker
#                                       20.10, which imports every image as its own platform
# Nothing can be pulled on these machines, so images are imported from a local root file system.
# DOCKER_SOCK names the daemon's socket (default /var/run/docker.sock, the system daemon), so the
# same images reach every daemon of tests/testbed/start-engine.sh. A socket is a file: it answers
# from any network namespace.
set -euo pipefail

sock=${DOCKER_SOCK:-/var/run/docker.sock}
api() { curl -fsS --unix-socket "$sock" "http://localhost$1"; }
have_image() { api "/images/$1/json" >/dev/null 2>&1; }

# shellcheck source=tests/testbed/apt.sh
. "$(dirname "$0")/apt.sh"
dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
command -v jq >/dev/null 2>&1 || apt_install jq

# import_busybox NAME BUSYBOX PLATFORM: NAME:latest from a root file system holding BUSYBOX and
# its applets, for PLATFORM.
import_busybox() {
  local name=$1 busybox=$2 platform=$3 root
  if have_image "$name:latest"; then
    echo "base image: $name:latest present ($sock)"
    return
  fi
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,root,usr/bin,usr/sbin,sbin}
  cp "$busybox" "$root/bin/busybox"
  # The applet list comes from the machine's busybox: a foreign one may not run here.
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | curl -fsS --unix-socket "$sock" -X POST \
    -H 'Content-Type: application/x-tar' --data-binary @- \
    "http://localhost/images/create?fromSrc=-&repo=$name&tag=latest&platform=$platform" >/dev/null
  rm -rf "$root"
  # Docker 20.10 ignores an import's platform: an image that says another one is removed again
  # (20.10's BuildKit looks bases for other platforms up in a registry anyway).
  local made
  made=$(api "/images/$name:latest/json" | jq -r '.Os + "/" + .Architecture')
  if [ "$made" != "$platform" ]; then
    curl -fsS --unix-socket "$sock" -X DELETE "http://localhost/images/$name:latest" >/dev/null
    echo "base image: $name:latest not made: this daemon imported it as $made ($sock)"
    return
  fi
  echo "base image: $name:latest created for $platform ($sock)"
}

import_busybox buildopt-test/busybox /bin/busybox linux/amd64
"$(dirname "$0")/foreign-platforms.sh"
foreign=${BUILDOPT_FOREIGN_ROOT:-/opt/buildopt-testbed/foreign}
for arch in arm64 s390x; do
  import_busybox "buildopt-test/busybox-$arch" "$foreign/busybox-$arch/bin/busybox" "linux/$arch"
done
