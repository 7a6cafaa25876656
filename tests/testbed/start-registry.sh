#!/usr/bin/env bash
# Starts a local image registry for the push tests: Debian's docker-registry (distribution 2.8),
# installed when missing, listening on 127.0.0.1:5000 only, with htpasswd (bcrypt) auth for one
# known test user and storage in a temporary folder. Idempotent: does nothing when the registry
# already answers. The daemon pushes to 127.0.0.1:5000 over plain HTTP without extra settings.
#
# Environment:
#   BUILDOPT_REGISTRY_DIR    config, htpasswd, storage and log (default /tmp/buildopt-registry)
#   BUILDOPT_REGISTRY_NETNS  a network namespace (from `ip netns add`) to run it in, for a daemon
#                            of tests/testbed/start-engine.sh: 127.0.0.1 there is the namespace's
#                            own loopback, so each daemon gets a registry of its own (default: none,
#                            the host's 127.0.0.1:5000 for the system daemon)
set -euo pipefail

addr=127.0.0.1:5000
user=${BUILDOPT_TEST_REGISTRY_USER:-buildopt}
password=${BUILDOPT_TEST_REGISTRY_PASSWORD:-buildopt-test-password}
dir=${BUILDOPT_REGISTRY_DIR:-/tmp/buildopt-registry}
netns=${BUILDOPT_REGISTRY_NETNS:-}

# Both the probe and the registry must see the namespace's loopback. nsenter --net only switches
# the network namespace (`ip netns exec` would also remount /sys, which nothing here needs).
in_netns=()
where=$addr
if [ -n "$netns" ]; then
  in_netns=(nsenter "--net=/var/run/netns/$netns")
  where="$addr in network namespace $netns"
fi

status() { "${in_netns[@]}" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$addr/v2/" || true; }

if [ "$(status)" = 401 ]; then
  echo "registry: already running on $where"
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
echo "registry: starting on $where (log: $log)"
setsid "${in_netns[@]}" docker-registry serve "$dir/config.yml" >"$log" 2>&1 </dev/null &
# So that tests/testbed/stop-engine.sh can stop the registry of one namespace, and only that one.
echo $! >"$dir/registry.pid"

for _ in $(seq 1 30); do
  if [ "$(status)" = 401 ]; then
    echo "registry: ready on $where"
    exit 0
  fi
  sleep 1
done
echo "registry: did not answer 401 on http://$addr/v2/ ($where) within 30 s; last log lines:" >&2
tail -n 30 "$log" >&2
exit 1
