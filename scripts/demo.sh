#!/usr/bin/env bash
# The main job on the bundled sample content: sample RPMs built from the
# spec files in tests/fixtures/rpms, a tree from recipes/sample-base.toml,
# an OCI base image packed from it, inspected through skopeo.
#
#   bash scripts/demo.sh [WORKDIR]      (default /var/tmp/corral-demo)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"
corral_setup

work=${1:-/var/tmp/corral-demo}
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

step "done"
cat <<MSG
The image layout is at $work/images/sample-base (tag 43), its SBOM at
$work/images/sample-base.spdx.json. Try:
  skopeo inspect oci:$work/images/sample-base:43
  umoci unpack --image $work/images/sample-base:43 $work/bundle
MSG
