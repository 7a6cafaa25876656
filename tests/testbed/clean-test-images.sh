#!/usr/bin/env bash
# Removes what earlier runs of the test suite left in a daemon (DOCKER_SOCK, default
# /var/run/docker.sock): images of the tests' own repositories (bo-*, buildopt-test/cache-*,
# buildopt-test/engine-*, example/*, busybox-derived tags the example uses) and dangling images.
# A test run killed midway leaves them behind, and a machine's daemon state outlives the run:
# classic-builder layers that later tests build upon, and that a test checking it removes all it
# made would find. The base images (buildopt-test/busybox) stay. Idempotent.
set -euo pipefail

sock=${DOCKER_SOCK:-/var/run/docker.sock}
api() { curl -fsS --unix-socket "$sock" "$@"; }

refs=$(api 'http://localhost/images/json' | python3 -c '
import json, sys
mine = ("bo-", "buildopt-test/cache-", "buildopt-test/engine-", "example/")
for image in json.load(sys.stdin):
    for tag in image.get("RepoTags") or []:
        if tag.startswith(mine):
            print(tag)
')
removed=0
for ref in $refs; do
  if api -X DELETE "http://localhost/images/$ref?force=true" >/dev/null 2>&1; then
    removed=$((removed + 1))
  fi
done
api -X POST 'http://localhost/images/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D' >/dev/null || true
echo "test images: removed $removed tags left by earlier runs, pruned dangling images"
