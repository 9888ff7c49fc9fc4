#!/usr/bin/env bash
# The main job on the bundled sample content: sample RPMs built from the
# spec files in tests/fixtures/rpms, a tree from recipes/sample-base.toml,
# an OCI base image packed from it, inspected through skopeo, pushed to
# and served by `corral mirror serve` on 127.0.0.1:5000.
#
#   bash scripts/demo.sh [WORKDIR]      (default /var/tmp/corral-demo)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"
corral_setup

work=${1:-/var/tmp/corral-demo}
port=${CORRAL_DEMO_PORT:-5000}
rm -rf "$work"
mkdir -p "$work"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}

step() { printf '\n==> %s\n' "$*"; }

# The debug profile shares its build cache with scripts/test.sh (the
# dependencies are optimised either way; see Cargo.toml).
step "building corral"
cargo build --locked -p corral --manifest-path "$here/Cargo.toml"
corral=$CARGO_TARGET_DIR/debug/corral

step "building the sample RPM repositories from tests/fixtures/rpms"
bash "$here/tests/fixtures/rpms/build-repo.sh" "$work/repos" >/dev/null
export CORRAL_SAMPLE_REPOS=$work/repos
ls "$work"/repos/main "$work"/repos/signed | sed 's/^/    /'

step "planning the tree (recipes/sample-base.toml)"
"$corral" tree plan "$here/recipes/sample-base.toml" | sed -n '1,6p'

step "building the tree with dnf and rpm"
"$corral" tree build "$here/recipes/sample-base.toml" --rootfs "$work/rootfs"

step "packing the OCI base image"
"$corral" image build "$here/recipes/sample-base.toml" --rootfs "$work/rootfs" -o "oci:$work/images/sample-base:43"

step "inspecting it through skopeo's image proxy"
"$corral" image inspect "oci:$work/images/sample-base:43"

step "serving it from the corral mirror on 127.0.0.1:$port"
[ -f "$work/../corral-demo-mirror.pid" ] && kill "$(cat "$work/../corral-demo-mirror.pid")" 2>/dev/null || true
htpasswd -Bbn demo demo > "$work/htpasswd"
setsid "$corral" mirror serve --listen "127.0.0.1:$port" --storage "$work/mirror" \
  --htpasswd "$work/htpasswd" > "$work/mirror.log" 2>&1 < /dev/null &
echo $! > "$work/../corral-demo-mirror.pid"
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/mirror.log"; exit 1; }
skopeo copy --quiet --dest-tls-verify=false --dest-creds demo:demo \
  "oci:$work/images/sample-base:43" "docker://127.0.0.1:$port/sample/base:43"
echo "    pushed sample/base:43 (push needs credentials; pulls are anonymous)"
skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/sample/base:43" \
  | jq -r '"    digest \(.Digest)\n    labels name=\(.Labels.name) version=\(.Labels.version)"'

step "done"
cat <<MSG
The catalog:       http://127.0.0.1:$port/
Pull the image:    podman pull --tls-verify=false 127.0.0.1:$port/sample/base:43
                   docker pull 127.0.0.1:$port/sample/base:43
                   skopeo copy --src-tls-verify=false docker://127.0.0.1:$port/sample/base:43 oci:/tmp/base:43
The mirror keeps running (pid $(cat "$work/../corral-demo-mirror.pid"), log $work/mirror.log);
stop it with: kill \$(cat $work/../corral-demo-mirror.pid)
The image layout is at $work/images/sample-base (tag 43), its SBOM at
$work/images/sample-base.spdx.json.
MSG
