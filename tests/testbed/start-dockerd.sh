#!/usr/bin/env bash
# Installs (when missing) and starts a Docker daemon for the test suite, then waits for its socket.
# Idempotent: does nothing when a daemon already answers on DOCKER_HOST or /var/run/docker.sock.
set -euo pipefail

sock=/var/run/docker.sock
answers() { curl -fsS --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }

if answers; then
  echo "dockerd: already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd: installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

log=${DOCKERD_LOG:-/tmp/buildopt-dockerd.log}
echo "dockerd: starting (log: $log)"
setsid dockerd >"$log" 2>&1 < /dev/null &

for _ in $(seq 1 60); do
  if answers; then
    echo "dockerd: ready"
    exit 0
  fi
  sleep 1
done
echo "dockerd: did not answer within 60 s; last log lines:" >&2
tail -n 30 "$log" >&2
exit 1
