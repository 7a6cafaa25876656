#!/usr/bin/env bash
# Starts a local image registry for the push tests: Debian's docker-registry (distribution 2.8),
# installed when missing, listening on 127.0.0.1:5000 only, with htpasswd (bcrypt) auth for one
# known test user and storage in a temporary folder. Idempotent: does nothing when the registry
# already answers. The daemon pushes to 127.0.0.1:5000 over plain HTTP without extra settings.
set -euo pipefail

addr=127.0.0.1:5000
user=${BUILDOPT_TEST_REGISTRY_USER:-buildopt}
password=${BUILDOPT_TEST_REGISTRY_PASSWORD:-buildopt-test-password}
dir=${BUILDOPT_REGISTRY_DIR:-/tmp/buildopt-registry}

status() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$addr/v2/" || true; }

if [ "$(status)" = 401 ]; then
  echo "registry: already running on $addr"
  exit 0
fi

install_missing() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v docker-registry >/dev/null 2>&1 || install_missing docker-registry
# htpasswd -B writes the bcrypt hashes the registry requires.
command -v htpasswd >/dev/null 2>&1 || install_missing apache2-utils

mkdir -p "$dir/storage"
htpasswd -Bbc "$dir/htpasswd" "$user" "$password" 2>/dev/null
cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $addr
auth:
  htpasswd:
    realm: buildopt-test
    path: $dir/htpasswd
CONFIG

log=$dir/registry.log
echo "registry: starting on $addr (log: $log)"
setsid docker-registry serve "$dir/config.yml" >"$log" 2>&1 </dev/null &

for _ in $(seq 1 30); do
  if [ "$(status)" = 401 ]; then
    echo "registry: ready"
    exit 0
  fi
  sleep 1
done
echo "registry: did not answer 401 on http://$addr/v2/ within 30 s; last log lines:" >&2
tail -n 30 "$log" >&2
exit 1
