# shellcheck shell=bash
# Sourced by the testbed scripts: apt_install PACKAGE... installs Debian packages, running
# `apt-get update` once per script (a fresh machine's package lists may be empty or old).
apt_updated=false
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = false ]; then
    apt-get update -qq
    apt_updated=true
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
