#!/usr/bin/env bash
# Runs buildopt's main job on the example monorepo: copies examples/monorepo into a fresh git
# repository, commits it, makes a change (the shared folder and the api's README), and asks
# buildopt what to rebuild and why, as a table and as the JSON plan.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
buildopt="$project/target/release/buildopt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$project/examples/monorepo/." "$work/"
git_() { git -C "$work" -c user.name=example -c user.email=example@example.invalid "$@"; }
git_ init -q -b main
git_ add -A
git_ commit -q -m "example monorepo"

echo "LOG_LEVEL=debug" >> "$work/shared/config.env"
echo "More documentation." >> "$work/services/api/README.md"
git_ commit -q -am "change the shared config and the api docs"

echo "== buildopt plan --base HEAD~1"
"$buildopt" -C "$work" plan --base HEAD~1
echo
echo "== buildopt plan --base HEAD~1 --output matrix"
"$buildopt" -C "$work" plan --base HEAD~1 --output matrix
echo
echo "== buildopt plan --force"
"$buildopt" -C "$work" plan --force
