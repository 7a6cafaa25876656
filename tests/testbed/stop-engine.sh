#!/usr/bin/env bash
# Usage: tests/testbed/stop-engine.sh NAME
# Stops what tests/testbed/start-engine.sh NAME started: its dockerd (which stops its own
# containerd) and the registry of its namespace, each by the pid it recorded, so no other daemon
# or registry is touched. Keeps the namespace, the install and the data (images, registry storage),
# so the next start is quick. Starting NAME again with the other image store works on the same
# data folder: each store keeps its own images there. Idempotent: what is not running is skipped.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 NAME" >&2
  exit 2
fi
name=$1
state=/var/lib/buildopt-testbed/$name
run=/run/buildopt-$name

# Stops the process in PIDFILE when it is still the program named COMM (a stale pid file may
# name a process that has reused the number); waits up to 30 s for it to exit.
stop() {
  local pidfile=$1 comm=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != "$comm" ]; then
    rm -f "$pidfile"
    return 0
  fi
  echo "engine $name: stopping $comm ($pid)"
  kill "$pid"
  for _ in $(seq 1 30); do
    [ -d "/proc/$pid" ] || break
    sleep 1
  done
  if [ -d "/proc/$pid" ]; then
    echo "engine $name: $comm ($pid) did not exit within 30 s" >&2
    exit 1
  fi
  rm -f "$pidfile"
}

stop "$run/docker.pid" dockerd
stop "$state/registry/registry.pid" docker-registry
echo "engine $name: stopped"
