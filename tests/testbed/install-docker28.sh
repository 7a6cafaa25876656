#!/usr/bin/env bash
# Fetches today's Docker Engine from Debian unstable and unpacks it into one folder, beside (not
# over) the system's Docker 20.10, for tests/testbed/start-engine.sh:
#   docker.io      dockerd, docker-proxy (28.x)
#   containerd     containerd, containerd-shim-runc-v2 (2.x)
#   docker-cli     the docker CLI of the same release
#   docker-buildx  the buildx CLI plugin
#   tini-static    what docker.io's docker-init symlink points at (`docker run --init`)
# Bookworm only has Docker 20.10, but these binaries run on it when unpacked rather than installed.
# The system's apt sources and state are not touched: apt reads a sources list and keeps its lists
# and cache under the install folder. Bookworm's /usr/sbin/runc is used (the unstable runc needs a
# newer glibc), so Debian's runc package is installed when it is missing.
#
# Environment:
#   BUILDOPT_DOCKER28_ROOT     install folder (default /opt/buildopt-testbed/docker28)
#   BUILDOPT_DOCKER28_VERSION  the docker.io upstream version (or prefix) required; the default
#                              28. accepts any 28.x (verified with 28.5.2); unstable moves on, and
#                              an engine that is not 28 must fail here rather than in the tests
#   BUILDOPT_DOCKER28_MIRROR   Debian mirror (default http://deb.debian.org/debian)
# Idempotent: does nothing (but print the versions) when the folder holds a complete install.
set -euo pipefail

root=${BUILDOPT_DOCKER28_ROOT:-/opt/buildopt-testbed/docker28}
want=${BUILDOPT_DOCKER28_VERSION:-28.}
mirror=${BUILDOPT_DOCKER28_MIRROR:-http://deb.debian.org/debian}
packages=(docker.io containerd docker-cli docker-buildx tini-static)

# VERSIONS is written last, so its presence means every package was unpacked.
if [ -s "$root/VERSIONS" ] && [ -x "$root/usr/sbin/dockerd" ]; then
  echo "docker28: present in $root ($(paste -sd ' ' "$root/VERSIONS"))"
  exit 0
fi

# shellcheck source=tests/testbed/apt.sh
. "$(dirname "$0")/apt.sh"
[ -x /usr/sbin/runc ] || apt_install runc
# The archive key that signs unstable ships in bookworm's keyring.
[ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring

# apt works in a scratch folder next to the install, so a failed run leaves the old install as is.
work="$root.work"
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
trap 'rm -rf "$work"' EXIT
# target=Packages: the package index is all that is needed (no translations, no AppStream data).
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror sid main" \
  >"$work/sources.list"
apt_private=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  # The download folder is root's; apt's unprivileged _apt user could not write to it.
  -o APT::Sandbox::User=root
)

echo "docker28: reading the package index of Debian unstable ($mirror)"
apt-get -qq "${apt_private[@]}" update

versions=()
for package in "${packages[@]}"; do
  # awk reads to the end: exiting early would break apt-cache's pipe under pipefail.
  version=$(apt-cache "${apt_private[@]}" show --no-all-versions "$package" 2>/dev/null |
    awk '/^Version:/ && !v {v = $2} END {print v}')
  if [ -z "$version" ]; then
    echo "docker28: $package is not in Debian unstable's index" >&2
    exit 1
  fi
  versions+=("$package=$version")
done
# docker.io's version is epoch-less, e.g. 28.5.2+dfsg4-5.
docker_version=${versions[0]#docker.io=}
case "$docker_version" in
"$want"*) ;;
*)
  echo "docker28: Debian unstable has docker.io $docker_version, not $want*;" \
    "set BUILDOPT_DOCKER28_VERSION to accept it (and check the engine identity test)" >&2
  exit 1
  ;;
esac

echo "docker28: downloading ${versions[*]}"
(cd "$work/debs" && apt-get -qq "${apt_private[@]}" download "${versions[@]}")
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/root"
done
# Unstable's runc (if a package ever brings one) needs glibc 2.38; bookworm's must win on PATH.
find "$work/root" -name runc -type f -delete

# The CLI looks for plugins in $DOCKER_CONFIG/cli-plugins (or compiled-in system folders): a
# config folder of the install's own makes buildx available without touching ~/.docker or /usr.
mkdir -p "$work/root/cli-config/cli-plugins"
ln -s ../../usr/libexec/docker/cli-plugins/docker-buildx "$work/root/cli-config/cli-plugins/docker-buildx"

printf '%s\n' "${versions[@]}" >"$work/root/VERSIONS"
rm -rf "$root"
mkdir -p "$(dirname "$root")"
mv "$work/root" "$root"

# Each binary must start on this system (glibc, kernel), not just be there.
"$root/usr/sbin/dockerd" --version >/dev/null
"$root/usr/bin/containerd" --version >/dev/null
"$root/usr/bin/docker" --version >/dev/null
DOCKER_CONFIG="$root/cli-config" "$root/usr/bin/docker" buildx version >/dev/null
echo "docker28: installed in $root ($(paste -sd ' ' "$root/VERSIONS")), runc $(/usr/sbin/runc --version | awk 'NR == 1 {print $3}')"
