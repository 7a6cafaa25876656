#!/usr/bin/env bash
# Makes the base images the tests and the example repository build FROM, without any registry:
#   buildopt-test/busybox:latest  a busybox-static root file system (a few MB, seconds)
# Nothing can be pulled on these machines, so images are imported from a local root file system.
# DOCKER_SOCK names the daemon's socket (default /var/run/docker.sock, the system daemon), so the
# same images reach every daemon of tests/testbed/start-engine.sh. A socket is a file: it answers
# from any network namespace.
set -euo pipefail

sock=${DOCKER_SOCK:-/var/run/docker.sock}
api() { curl -fsS --unix-socket "$sock" "http://localhost$1"; }
have_image() { api "/images/$1/json" >/dev/null 2>&1; }

if ! dpkg -s busybox-static >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi

if ! have_image buildopt-test/busybox:latest; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,etc,tmp,root,usr/bin,usr/sbin,sbin}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  tar -C "$root" -c . | curl -fsS --unix-socket "$sock" -X POST \
    -H 'Content-Type: application/x-tar' --data-binary @- \
    'http://localhost/images/create?fromSrc=-&repo=buildopt-test/busybox&tag=latest' >/dev/null
  echo "base image: buildopt-test/busybox:latest created ($sock)"
else
  echo "base image: buildopt-test/busybox:latest present ($sock)"
fi
