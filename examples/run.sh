#!/usr/bin/env bash
# Runs buildopt's main job on the example monorepo, set-up included: starts a Docker daemon and
# imports the busybox base image (tests/testbed), copies examples/monorepo into a fresh git
# repository, then builds it, builds again with nothing changed, changes the shared
# folder and the api's README, plans and builds once more, and runs the CI pipeline.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n== %s\n' "$*"; }

step "starting a Docker daemon and importing the busybox base image (tests/testbed)"
"$project/tests/testbed/start-dockerd.sh"
"$project/tests/testbed/make-base-images.sh"
step "compiling buildopt (cargo build --release: a few minutes the first time, seconds after)"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
buildopt="$project/target/release/buildopt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$project/examples/monorepo/." "$work/"
git_() { git -C "$work" -c user.name=example -c user.email=example@example.invalid "$@"; }
git_ init -q -b main
git_ add -A
git_ commit -q -m "example monorepo"

step "buildopt build --force   (first build of every image)"
"$buildopt" -C "$work" build --force

step "buildopt build --base HEAD   (nothing changed, so nothing builds)"
"$buildopt" -C "$work" build --base HEAD

echo "LOG_LEVEL=debug" >> "$work/shared/config.env"
echo "More documentation." >> "$work/services/api/README.md"
git_ commit -q -am "change the shared config and the api docs"

step "buildopt plan --base HEAD~1"
"$buildopt" -C "$work" plan --base HEAD~1

step "buildopt plan --base HEAD~1 --output matrix"
"$buildopt" -C "$work" plan --base HEAD~1 --output matrix

step "buildopt build --base HEAD~1"
"$buildopt" -C "$work" build --base HEAD~1

step "buildopt ci --base HEAD~1   (the CI pipeline: build, then the report files)"
"$buildopt" -C "$work" ci --base HEAD~1
for file in buildopt-report.json buildopt-junit.xml buildopt.env buildopt-report.html; do
    printf '%s: %s bytes\n' "$file" "$(wc -c < "$work/$file")"
done
sed -n '1,12p' "$work/buildopt.env"
