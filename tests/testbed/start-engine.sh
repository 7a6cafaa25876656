#!/usr/bin/env bash
# Usage: tests/testbed/start-engine.sh NAME STORE      (STORE: overlay2 | containerd)
# e.g.   tests/testbed/start-engine.sh docker28-containerd containerd
#
# Starts a Docker 28 daemon (tests/testbed/install-docker28.sh, installed when missing) beside the
# system's Docker 20.10, in a network namespace of its own, buildopt-NAME, with:
#   STORE overlay2    the classic image store (graph driver overlay2)
#   STORE containerd  the containerd image store (Docker 29's default on fresh installations)
# then a registry on 127.0.0.1:5000 inside that namespace (tests/testbed/start-registry.sh, same
# user and password as the host's) and the base images (tests/testbed/make-base-images.sh).
#
# Why a namespace: the daemon makes its own docker0 there, so the host's bridge and the system
# daemon are left alone (never start a second daemon with --bridge=none in the host's namespace:
# it deletes the host's docker0). Inside, containers reach no network and 127.0.0.1 is the
# namespace's loopback: run a test in it with `nsenter --net=/var/run/netns/buildopt-NAME` (not
# `ip netns exec`, which remounts /sys and makes dockerd fail: "Devices cgroup isn't mounted").
#
# Files: /var/lib/buildopt-testbed/NAME  data-root, daemon.json, dockerd.log, registry/
#        /run/buildopt-NAME              docker.sock, docker.pid, exec-root (kept short: unix
#                                        socket paths are limited to 107 bytes), env (below)
# It ends by printing which engine answers, and writes /run/buildopt-NAME/env: shell assignments
# (BUILDOPT_ENGINE_NETNS, DOCKER_HOST, DOCKER_CONFIG, BUILDOPT_ENGINE_PATH) for the engine's CLI.
# Idempotent: a daemon, namespace or registry that is already there is kept (a daemon with the
# other image store is an error: stop it with tests/testbed/stop-engine.sh NAME).
set -euo pipefail

if [ $# -ne 2 ] || { [ "$2" != overlay2 ] && [ "$2" != containerd ]; }; then
  echo "usage: $0 NAME overlay2|containerd" >&2
  exit 2
fi
name=$1
store=$2
here=$(cd "$(dirname "$0")" && pwd)
root=${BUILDOPT_DOCKER28_ROOT:-/opt/buildopt-testbed/docker28}
netns=buildopt-$name
state=/var/lib/buildopt-testbed/$name
run=/run/buildopt-$name
sock=$run/docker.sock
log=$state/dockerd.log
say() { echo "engine $name: $*"; }

# shellcheck source=tests/testbed/apt.sh
. "$(dirname "$0")/apt.sh"
command -v ip >/dev/null 2>&1 || apt_install iproute2
command -v nsenter >/dev/null 2>&1 || apt_install util-linux
command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
command -v jq >/dev/null 2>&1 || apt_install jq

"$here/install-docker28.sh"

# The namespace, with its loopback up (a new namespace's lo is down: nothing would answer on
# 127.0.0.1). `ip -n` enters the namespace for this one command.
if [ ! -e "/var/run/netns/$netns" ]; then
  say "creating network namespace $netns"
  ip netns add "$netns"
fi
ip -n "$netns" link set lo up

api() { curl -fsS --max-time 10 --unix-socket "$sock" "http://localhost$1"; }
answers() { curl -fsS --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }

# The image store the daemon really uses: with the containerd store, /info's DriverStatus holds
# ["driver-type", "io.containerd.snapshotter.v1"] (and Driver is the snapshotter, e.g. overlayfs).
store_of() {
  api /info | jq -r 'if any(.DriverStatus[]?; .[0] == "driver-type" and .[1] == "io.containerd.snapshotter.v1")
    then "containerd" else "classic" end'
}
expected_store() { if [ "$store" = containerd ]; then echo containerd; else echo classic; fi; }

if answers; then
  say "already running ($sock)"
else
  mkdir -p "$state/data" "$run"
  # A daemon of an earlier boot or a crash leaves a pid file: dockerd refuses to start while the
  # pid it names is alive, and a stale one names another process. Keep it only when it is a dockerd.
  if [ -s "$run/docker.pid" ]; then
    pid=$(cat "$run/docker.pid")
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]; then
      say "dockerd $pid has the pid file but does not answer on $sock; stop it: $here/stop-engine.sh $name" >&2
      exit 1
    fi
    rm -f "$run/docker.pid"
  fi
  snapshotter=false
  [ "$store" = containerd ] && snapshotter=true
  echo "{\"features\": {\"containerd-snapshotter\": $snapshotter}}" >"$state/daemon.json"
  say "starting dockerd (image store: $store, network namespace $netns, log: $log)"
  # --iptables=false/--ip6tables=false: a namespace with only lo has no outside to masquerade to
  # or forward from, so firewall rules would do nothing. PATH: the unpacked containerd, shim,
  # docker-proxy and docker-init first; runc is bookworm's /usr/sbin/runc.
  setsid nsenter "--net=/var/run/netns/$netns" \
    env "PATH=$root/usr/bin:$root/usr/sbin:$PATH" \
    dockerd \
    --data-root "$state/data" \
    --exec-root "$run/exec" \
    --pidfile "$run/docker.pid" \
    -H "unix://$sock" \
    --iptables=false --ip6tables=false \
    --config-file "$state/daemon.json" \
    >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    answers && break
    sleep 1
  done
  if ! answers; then
    say "did not answer on $sock within 60 s; last log lines:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  say "ready"
fi

actual=$(store_of)
if [ "$actual" != "$(expected_store)" ]; then
  say "the daemon on $sock uses the $actual image store, not $store; stop it ($here/stop-engine.sh $name) and start again" >&2
  exit 1
fi

BUILDOPT_REGISTRY_NETNS=$netns BUILDOPT_REGISTRY_DIR=$state/registry "$here/start-registry.sh"
DOCKER_SOCK=$sock "$here/make-base-images.sh"

cat >"$run/env" <<ENV
BUILDOPT_ENGINE_NETNS=$netns
DOCKER_HOST=unix://$sock
DOCKER_CONFIG=$root/cli-config
BUILDOPT_ENGINE_PATH=$root/usr/bin
ENV

version=$(api /version)
info=$(api /info)
say "Docker $(jq -r .Version <<<"$version"), API $(jq -r .ApiVersion <<<"$version")," \
  "storage driver $(jq -r .Driver <<<"$info"), image store $actual," \
  "socket $sock, network namespace $netns"
say "CLI: DOCKER_HOST=unix://$sock DOCKER_CONFIG=$root/cli-config PATH=$root/usr/bin:\$PATH docker info" \
  "(prefix nsenter --net=/var/run/netns/$netns to reach its registry on 127.0.0.1:5000)"
