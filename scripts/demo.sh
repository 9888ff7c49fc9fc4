#!/usr/bin/env bash
# The main job on the bundled sample content: `corral release` with
# release.toml. It builds the sample base image from the RPMs that
# tests/fixtures/rpms/*.spec make, tests it, builds the small library in
# tests/fixtures/dockerfiles FROM it, composes the sample Atomic Host
# stream, signs everything and publishes it to `corral mirror serve` on
# 127.0.0.1:5000, which keeps running; then a disk image of the stream
# (`corral disk build`, as root: it needs loop devices) for the website's
# downloads. Loopback only: no traffic leaves
# the machine.
#
#   bash scripts/demo.sh [WORKDIR]      (default /var/tmp/corral-demo)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"
corral_setup

work=${1:-/var/tmp/corral-demo}
port=${CORRAL_DEMO_PORT:-5000}
pidfile=$work-mirror.pid

step() { printf '\n==> %s\n' "$*"; }

# A mirror left by an earlier demo goes first: it holds the port.
[ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
# libostree makes the demo host's deployment roots immutable
[ -d "$work/host" ] && find "$work/host" -maxdepth 5 -path '*ostree/deploy/*/deploy/*' -type d -prune -exec chattr -i {} +
rm -rf "$work"
mkdir -p "$work"

# The debug profile shares its build cache with scripts/test.sh (the
# dependencies are optimised either way; see Cargo.toml).
step "building corral"
cargo build --locked -p corral --manifest-path "$here/Cargo.toml"
corral=$CARGO_TARGET_DIR/debug/corral
# Only now: build scripts rerun when SOURCE_DATE_EPOCH changes, and
# scripts/test.sh builds without it.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}

step "building the sample RPM repositories from tests/fixtures/rpms"
bash "$here/tests/fixtures/rpms/build-repo.sh" "$work/repos" >/dev/null
export CORRAL_SAMPLE_REPOS=$work/repos
ls "$work"/repos/main "$work"/repos/signed | sed 's/^/    /'

step "signing keys: cosign, and GPG for image signatures and commits"
keys=$work/keys
export CORRAL_KEY_PASSWORD=demo
"$corral" key generate --type cosign --out "$keys" | sed 's/^/    /'
mkdir -m 0700 -p "$keys/gnupg"
"$corral" key generate --type gpg --out "$keys" --gpg-homedir "$keys/gnupg" \
  --gpg-uid 'corral release <release@corral.invalid>' | sed 's/^/    /'

step "starting the corral mirror on 127.0.0.1:$port (with the OSTree repository, trusting the keys above)"
htpasswd -Bbn demo demo > "$work/htpasswd"
mkdir -p "$work/release" "$work/disk-images"
ostree init --mode=archive --repo="$work/release/ostree"
# The catalog checks signatures against the keys the mirror trusts: without
# them every image would show "signed, not verified".
setsid "$corral" mirror serve --listen "127.0.0.1:$port" --storage "$work/mirror" \
  --htpasswd "$work/htpasswd" --ostree-repo "$work/release/ostree" \
  --disk-images "$work/disk-images" \
  --trust-gpg-keyring "$keys/corral-signing.gpg" --trust-cosign-key "$keys/cosign.pub" \
  > "$work/mirror.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/mirror.log"; exit 1; }

step "starting a Docker Engine for the library builds and image tests"
mkdir -p "$work/docker"
dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --host="unix://$work/docker/docker.sock" --data-root="$work/docker/data" \
  --exec-root="$work/docker/exec" --pidfile="$work/docker/docker.pid" \
  > "$work/docker/dockerd.log" 2>&1 < /dev/null &
dockerd_pid=$!
trap 'kill "$dockerd_pid" 2>/dev/null || true' EXIT
export DOCKER_HOST=unix://$work/docker/docker.sock
for _ in $(seq 1 100); do
  docker version >/dev/null 2>&1 && break
  sleep 0.3
done
docker version >/dev/null || { tail -20 "$work/docker/dockerd.log"; exit 1; }

export CORRAL_RELEASE_WORK=$work/release CORRAL_RELEASE_KEYS=$keys CORRAL_MIRROR_PORT=$port
export CORRAL_REGISTRY_CREDS=demo:demo CORRAL_MCS_DIR=$work/mcs

step "the plan: corral release --dry-run"
"$corral" release --config "$here/release.toml" --dry-run

step "corral release"
"$corral" release --config "$here/release.toml"

step "a second run has nothing to do"
"$corral" release --config "$here/release.toml" --dry-run

step "is anything outdated? corral image outdated"
"$corral" image outdated --config "$here/release.toml" || true

step "client policy that requires corral's signatures"
"$corral" policy --mirror "http://127.0.0.1:$port" --gpg-keyring "$keys/corral-signing.gpg" \
  --out "$work/client" | sed 's/^/    /'
skopeo --policy "$work/client/policy.json" --registries.d "$work/client/registries.d" \
  copy --quiet --src-tls-verify=false --remove-signatures \
  "docker://127.0.0.1:$port/sample/app:43" "oci:$work/pulled-app:43"
echo "    pulled sample/app:43 with its signature checked"
"$corral" verify image "127.0.0.1:$port/sample/app:43-stable" --plain-http \
  --gpg-keyring "$keys/corral-signing.gpg" | sed 's/^/    /'
"$corral" verify image "127.0.0.1:$port/sample/base:43" --plain-http \
  --key "$keys/cosign.pub" | sed 's/^/    /'

step "the catalog verifies every signed image with the demo's keys"
# Each tag's signature status as the catalog reports it; anything signed
# but not verified means the mirror does not trust the keys it signs with.
curl -fsS "http://127.0.0.1:$port/catalog.json" \
  | jq -r '.repositories[] | .name as $r | .tags[] | "\($r):\(.tag) \(.signatures.status)"' \
  | sed 's/^/    /' | tee "$work/catalog-signatures.txt"
if grep -q ' not-verified$' "$work/catalog-signatures.txt"; then
  echo "the catalog could not verify a signature (see above)" >&2
  exit 1
fi

step "a disk image of the stream: corral disk build (recorded in the stream file the website reads)"
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
  "$corral" disk build "$here/ostree-refs/sample-atomic.toml" --repo "$work/release/ostree" \
    --format qcow2 --size 2G -o "$work/disk-images/sample-atomic.qcow2" \
    --gpg-key release@corral.invalid --gpg-homedir "$keys/gnupg" | sed 's/^/    /'
else
  echo "    skipped: corral disk build needs root and loop devices"
fi

step "the trusted keys download from the mirror, and the verify commands the website shows pass"
for k in cosign.pub corral-signing.gpg; do
  curl -fsS -o "$work/downloaded-$k" "http://127.0.0.1:$port/keys/$k"
  cmp "$work/downloaded-$k" "$keys/$k"
  echo "    /keys/$k is the key the mirror trusts"
done
mkdir -p "$work/verify"
# shellcheck disable=SC2016
curl -fsS "http://127.0.0.1:$port/repositories/sample/base?format=json" \
  | jq -r '.commands.verify_corral[]' > "$work/verify/commands.sh"
(cd "$work/verify" && PATH=$(dirname "$corral"):$PATH bash -e commands.sh) | sed 's/^/    /'

step "what the website shows beside the images and the stream (published by corral release)"
site=http://127.0.0.1:$port
curl -fsS "$site/repositories/sample/base?format=json" | jq -r \
  '"    sample/base: \(.sbom.total_packages) packages in the SBOM, \(.advisories | length) advisories outstanding, \(.featured.uncompressed_size) bytes unpacked"'
curl -fsS "$site/repositories/sample/app?format=json" | jq -r \
  '"    sample/app: help \(if .help then "published" else "missing" end), Dockerfile with \(.build.findings | length) lint findings"'
curl -fsS "$site/atomic-host?format=json" | jq -r \
  '.streams[] | .name as $s | .versions[] | "    \($s) \(.version) \(.commit[0:12]) (\(.diff.added | length) added, \(.diff.changed | length) changed)"' \
  | tee "$work/site-streams.txt"
if [ ! -s "$work/site-streams.txt" ]; then
  echo "the website lists no Atomic Host stream" >&2
  exit 1
fi
curl -fsS "$site/atomic-host?format=json" | jq -r \
  '.streams[] | .name as $s | .images[] | "    \($s) disk image \(.name), \(.size) bytes, sha256 \(.sha256[0:12]), signature \(.signature.status)"' \
  | tee "$work/site-disk-images.txt"
if [ -s "$work/disk-images/sample-atomic.qcow2" ] && ! grep -q 'sample-atomic.qcow2.*signature verified$' "$work/site-disk-images.txt"; then
  echo "the website does not list the disk image with a verified signature" >&2
  exit 1
fi

step "the stream as an OS image (ostree container format): pushed, signed and shown by corral release"
# The moving tag of the OS image the host step pushed beside the base images.
os_image=$(jq -r '.steps[] | select(.step == "host") | .items[] | .os_image.references[-1] // empty' \
  "$work/release/release.json" | head -1)
if [ -z "$os_image" ]; then
  echo "the release published no OS image" >&2
  exit 1
fi
jq -r '.steps[] | select(.step == "host") | .items[] | select(.os_image)
  | "    \(.os_image.references | join(", ")) \(.os_image.digest), commit \(.os_image.commit[0:12]), \(.os_image.layers) layers"' \
  "$work/release/release.json"
"$corral" verify image "$os_image" --plain-http --key "$keys/cosign.pub" | sed 's/^/    /'
"$corral" verify image "$os_image" --plain-http \
  --gpg-keyring "$keys/corral-signing.gpg" | sed 's/^/    /'
curl -fsS "$site/atomic-host?format=json" | jq -r \
  '.streams[] | select(.os_image) | "    the website shows \(.os_image.reference) (\(.os_image.signatures | join(", ")))", "      \(.os_image.commands.corral[0])"'

step "an Atomic host deployed from the mirror: corral host"
hostroot=$work/host
mkdir -p "$hostroot"
ostree admin init-fs "$hostroot" >/dev/null
ostree admin os-init corral --sysroot="$hostroot" >/dev/null
"$corral" host --sysroot "$hostroot" remote add sample "http://127.0.0.1:$port/ostree" \
  --gpg-key "$keys/corral-signing.gpg" | sed 's/^/    /'
stream_ref=$(sed -n 's/^ref = "\(.*\)"/\1/p' "$here/ostree-refs/sample-atomic.toml")
"$corral" host --sysroot "$hostroot" deploy --origin "sample:$stream_ref" | sed 's/^/    /'
"$corral" host --sysroot "$hostroot" upgrade --check | sed 's/^/    /' || true
"$corral" host --sysroot "$hostroot" status | sed 's/^/    /'

step "the same host moves to the OS image: corral host rebase, then upgrades from the image"
# The commit inside the image is checked with the remote's GPG key, as
# the OSTree-over-HTTP upgrades are; then the image is the host's origin.
"$corral" host --sysroot "$hostroot" rebase --plain-http \
  "ostree-remote-registry:sample:$os_image" | sed 's/^/    /'
"$corral" host --sysroot "$hostroot" upgrade | sed 's/^/    /'
"$corral" host --sysroot "$hostroot" status | sed 's/^/    /'
if ! "$corral" host --sysroot "$hostroot" status --json \
  | jq -e --arg img "$os_image" '[.. | strings | select(contains($img))] | length > 0' >/dev/null; then
  echo "the host's status does not name the OS image $os_image" >&2
  exit 1
fi

step "a respin published as an OS image; the host upgrades from the image, fetching what changed"
# An out-of-band compose of the same packages (a new commit and version),
# pushed by `compose run --export` under its version, then moved to the
# tag the host follows. Only the commit layer differs from the image the
# host has.
auth=$work/registry-auth.json
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$port" "$(printf demo:demo | base64)" > "$auth"
respin=$(REGISTRY_AUTH_FILE=$auth "$corral" compose run "$here/ostree-refs/sample-atomic.toml" \
  --repo "$work/release/ostree" --force --reason "demo: a respin" --no-deltas \
  --gpg-key release@corral.invalid --gpg-homedir "$keys/gnupg" \
  --export "docker://127.0.0.1:$port/os/sample-atomic" --export-tls-verify=false --json)
respin_version=$(jq -r '.[0].version' <<<"$respin")
jq -r '.[0] | "    committed \(.version) \(.checksum[0:12]), pushed \(.image.pushed) in \(.image.layers | length) layers"' <<<"$respin"
skopeo copy --quiet --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
  --src-creds demo:demo --dest-creds demo:demo \
  "docker://127.0.0.1:$port/os/sample-atomic:$respin_version" "docker://$os_image"
# Signed in both formats, both tags, as corral release signs OS images.
for tag in "127.0.0.1:$port/os/sample-atomic:$respin_version" "$os_image"; do
  "$corral" sign image "$tag" --plain-http --key "$keys/cosign.key" >/dev/null
  "$corral" sign image "$tag" --plain-http --gpg-key release@corral.invalid \
    --gpg-homedir "$keys/gnupg" >/dev/null
done
"$corral" verify image "$os_image" --plain-http --key "$keys/cosign.pub" | sed 's/^/    /'
# (plain HTTP to the mirror is remembered in the deployment's origin)
upgrade=$("$corral" host --sysroot "$hostroot" upgrade --json)
jq -r '"    upgraded to \(.to.version) (\(.to.checksum[0:12])): fetched \(.fetch.bytes) bytes in \(.fetch.layers_fetched | length) layer(s), \(.fetch.layers_reused | length) already here"' <<<"$upgrade"
if [ "$(jq -r '.to.version' <<<"$upgrade")" != "$respin_version" ]; then
  echo "the host did not upgrade to $respin_version from the image" >&2
  exit 1
fi

# ---------------------------------------------------------------------------
# ARM (issue 23): the sample base and one library image for linux/amd64 and
# linux/arm64, each tag one image index, signed per platform. The arm64
# trees and RUN steps run through qemu-user (scripts/setup.sh).
step "ARM: the base and a library image for linux/amd64 + linux/arm64, published"
arm=$work/arm
mkdir -p "$arm"
"$corral" image build "$here/recipes/sample-base.toml" --platform linux/amd64,linux/arm64 \
  -o "oci:$arm/base:43" | sed 's/^/    /'
skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false --dest-creds demo:demo \
  "oci:$arm/base:43" "docker://127.0.0.1:$port/sample/base-multi:43"
CORRAL_REGISTRY_USER=demo CORRAL_REGISTRY_PASSWORD=demo "$corral" dockerfiles build \
  --all-platforms --library "$here/tests/fixtures/dockerfiles-multiarch" \
  --registry-map "quay.io/corral/base=127.0.0.1:$port/sample/base-multi" \
  --push "127.0.0.1:$port/multiarch" 2>/dev/null | sed 's/^/    /'
for image in sample/base-multi:43 multiarch/uname:43 multiarch/uname:43-multi; do
  "$corral" sign image "127.0.0.1:$port/$image" --plain-http \
    --gpg-key release@corral.invalid --gpg-homedir "$keys/gnupg" | sed 's/^/    /'
  "$corral" verify image "127.0.0.1:$port/$image" --plain-http \
    --gpg-keyring "$keys/corral-signing.gpg" | sed 's/^/    /'
done
for platform in linux/amd64 linux/arm64; do
  docker pull -q --platform "$platform" "127.0.0.1:$port/multiarch/uname:43" >/dev/null
  printf '    %s: uname -m says %s\n' "$platform" \
    "$(docker run --rm --network none --platform "$platform" "127.0.0.1:$port/multiarch/uname:43" busybox uname -m)"
done
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# The community portal (docs/portal.md): one template through the whole
# review flow. The mirror restarts with --portal; the portal checks in the
# demo's engine and publishes signed with a community key of its own.
step "a community template through the portal: submit, checks, two approvals, published as community/hello"
community=$work/community
mkdir -p "$community"
"$corral" key generate --type cosign --out "$community/key" | sed 's/^/    /'
cp "$community/key/cosign.pub" "$community/community.pub"
printf demo > "$community/key-password"
printf demo > "$community/push-password"
# The step's official base: busybox alone, imported into the engine.
mkdir -p "$community/base/bin"
cp "$(command -v busybox)" "$community/base/bin/busybox"
ln -sf busybox "$community/base/bin/sh"
tar -C "$community/base" -c . | docker import - localhost/demo/busybox:1 > /dev/null
cp -r "$here/tests/fixtures/portal/hello" "$community/hello"
sed -i 's|^FROM .*|FROM localhost/demo/busybox:1|' "$community/hello/Dockerfile"
cat > "$community/portal.toml" <<TOML
[portal]
sqlite_path = "$community/portal.db"
archive_dir = "$community/archives"
reviewers = ["rita", "rob"]
maintainers = ["max"]
signup = true
community_key = "$community/key/cosign.key"
community_key_password_file = "$community/key-password"
community_public_key = "$community/community.pub"

[portal.checks]
engine = "$DOCKER_HOST"
bases = ["localhost/demo/busybox:1"]
log_dir = "$community/logs"
mcs_dir = "$community/mcs"
scratch = "$community"

[portal.publish]
username = "demo"
password_file = "$community/push-password"
TOML
kill "$(cat "$pidfile")"
while curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.2; done
setsid "$corral" mirror serve --listen "127.0.0.1:$port" --storage "$work/mirror" \
  --htpasswd "$work/htpasswd" --ostree-repo "$work/release/ostree" \
  --trust-gpg-keyring "$keys/corral-signing.gpg" --trust-cosign-key "$keys/cosign.pub" \
  --trust-cosign-key "$community/community.pub" --portal "$community/portal.toml" \
  >> "$work/mirror.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
portal=http://127.0.0.1:$port/community
# A form as a browser sends it: the page's CSRF token, the session cookie.
form() { # JAR PAGE ACTION FIELD=VALUE...
  local jar=$1 page=$2 action=$3 token f args=()
  shift 3
  token=$(curl -fsS -b "$jar" -c "$jar" "$portal$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
  for f in "$@"; do args+=(--data-urlencode "$f"); done
  curl -fsS -o /dev/null -b "$jar" -c "$jar" --data-urlencode "csrf=$token" "${args[@]}" "$portal$action"
}
# the author is the mirror's htpasswd user demo
CORRAL_PORTAL_CREDS=demo:demo "$corral" portal submit "$community/hello" --to "$portal" | sed 's/^/    /'
for _ in $(seq 1 150); do
  curl -fsS "$portal/templates/hello.json" | grep -q '"status":"pending"' || break
  sleep 2
done
curl -fsS "$portal/templates/hello.json" | grep -q '"status":"failed"' && {
  echo "a check failed: $portal/templates/hello"; exit 1; }
echo "    lint, build and test passed"
for reviewer in rita rob; do
  form "$community/$reviewer.jar" /sign-up /sign-up "name=$reviewer" "password=$reviewer's demo password"
  form "$community/$reviewer.jar" /templates/hello /templates/hello/review \
    revision=1 verdict=approve "comment=checked by the demo"
  echo "    $reviewer approved"
done
for _ in $(seq 1 60); do
  "$corral" verify image "127.0.0.1:$port/community/hello:1" --key "$community/community.pub" \
    --plain-http >/dev/null 2>&1 && break
  sleep 2
done
"$corral" verify image "127.0.0.1:$port/community/hello:1" --key "$community/community.pub" \
  --plain-http | sed 's/^/    /'
cat <<MSG
The community template: $portal/templates/hello (its checks, reviews,
pull command and the policy for the community key $community/community.pub)
MSG

step "done"
cat <<MSG
The website:      http://127.0.0.1:$port/
The report:       $work/release/release.md (and release.json)

Pull an image, requiring its GPG signature (policy.json and registries.d/
from corral policy):
  skopeo --policy $work/client/policy.json --registries.d $work/client/registries.d \\
    copy --src-tls-verify=false --remove-signatures docker://127.0.0.1:$port/sample/base:43 oci:/tmp/base:43
To make podman and skopeo require it too, add the mirror's entry to the
system policy; every other registry keeps its rules (do not copy
$work/client/policy.json over it: it rejects everything else):
  sudo $corral policy --mirror http://127.0.0.1:$port \\
    --gpg-keyring $keys/corral-signing.gpg --merge /etc/containers/policy.json
  podman pull --tls-verify=false 127.0.0.1:$port/sample/app:43
Verify a signature (cosign format, or GPG):
  corral verify image 127.0.0.1:$port/sample/app:43 --key $keys/cosign.pub --plain-http
  corral verify image 127.0.0.1:$port/sample/app:43 --gpg-keyring $keys/corral-signing.gpg --plain-http

The Atomic host in $hostroot follows sample:$stream_ref (commits signed by
$keys/corral-signing.gpg). After the next compose
(with the demo's environment, CORRAL_SAMPLE_REPOS=$work/repos
CORRAL_RELEASE_WORK=$work/release CORRAL_RELEASE_KEYS=$keys
CORRAL_MIRROR_PORT=$port CORRAL_KEY_PASSWORD=demo:
  corral release --config $here/release.toml --only host --out-of-band REASON
composes a new commit when the stream's packages changed), upgrade it, and go back:
  corral host --sysroot $hostroot upgrade
  corral host --sysroot $hostroot status
  corral host --sysroot $hostroot rollback
A real host does the same with --sysroot / after
  corral host remote add sample http://127.0.0.1:$port/ostree --gpg-key $keys/corral-signing.gpg

The mirror keeps running (pid $(cat "$pidfile"), log $work/mirror.log);
stop it with: kill \$(cat $pidfile)

Open the website: http://127.0.0.1:$port/
MSG

