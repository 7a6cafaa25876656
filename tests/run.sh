#!/usr/bin/env bash
# The whole test suite, set-up included: starts a Docker daemon (installing it when missing),
# imports the base images, starts a local registry, installs the peer tools (the validators the
# wrapper tests run: tests/testbed/install-peers.sh), then runs
# formatting, lints and every test.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/testbed/start-dockerd.sh
tests/testbed/make-base-images.sh
tests/testbed/start-registry.sh
tests/testbed/install-peers.sh

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --lib --bins --tests
