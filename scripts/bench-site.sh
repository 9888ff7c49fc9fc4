#!/usr/bin/env bash
# Benchmark: the website's pages (docs/site.md) on a mirror holding 1,000
# repositories with 10 tags each (10,000 tags), loopback only. Needs curl,
# htpasswd, python3.
#
#   scripts/bench-site.sh                 # 30 requests per page
#   RUNS=100 scripts/bench-site.sh
#
# Every tag is a small image with labels (description, usage); a tenth of
# the repositories are named like library stacks. Prints, per page, the
# median time curl waits for the whole answer (one request at a time, so
# this is the server's render time plus loopback), and the home page's
# weight in bytes (HTML only: the site loads one CSS and one JS file).
set -euo pipefail

RUNS=${RUNS:-30}
REPOS=${REPOS:-1000}
TAGS=${TAGS:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/target-mirror}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

bench_require bench-site curl htpasswd python3
bench_serve_binary
bench_workdir bench-site
LOAD_BEFORE=$(load_average)

htpasswd -B -C 4 -b -c "$WORK/htpasswd" bench bench 2>/dev/null
mkdir -p "$WORK/ostree/objects" "$WORK/ostree/streams" "$WORK/disk"
printf '[core]\nrepo_version=1\nmode=archive-z2\n' > "$WORK/ostree/config"
python3 - "$WORK/ostree/streams/atomic-43.json" <<'PY'
import json, sys
versions = [{"version": f"43.202601{d:02d}.0", "commit": f"{d:064x}", "date": f"2026-01-{d:02d}T06:00:00Z",
             "diff": {"added": [f"pkg{d}-1.0-1.fc43"], "removed": [],
                      "changed": [{"name": "kernel", "from": f"6.13.{d}-200.fc43", "to": f"6.13.{d+1}-200.fc43"}]}}
            for d in range(28, 0, -1)]
json.dump({"name": "atomic-43", "ref": "corral/43/x86_64/atomic-host", "key": "8E1A5C0F",
           "versions": versions, "disk_images": ["atomic-43.qcow2"]}, open(sys.argv[1], "w"))
PY
head -c 1048576 /dev/urandom > "$WORK/disk/atomic-43.qcow2"
(cd "$WORK/disk" && sha256sum atomic-43.qcow2 > atomic-43.qcow2.sha256)

PORT=$(free_port)
RUST_LOG=warn "$SERVE" --listen "127.0.0.1:$PORT" --storage "$WORK/corral" \
    --htpasswd "$WORK/htpasswd" --ostree-repo "$WORK/ostree" --disk-images "$WORK/disk" \
    >"$WORK/serve.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PORT/healthz"

echo "pushing $REPOS repositories with $TAGS tags each..." >&2
PYTHONPATH="$ROOT/scripts/lib" python3 - "$PORT" "$REPOS" "$TAGS" <<'PY'
import json, sys
from registry_client import Registry, sha
port, repos, tags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
req = Registry(port, "bench:bench").req
stacks = ["python3.12", "ruby3.3", "php8.3", "nodejs22", "openjdk21", "perl5.40", "golang1.23", "postgresql16", "redis7", "nginx1.26"]
layer = b"bench layer\n"
first = True
for i in range(repos):
    name = f"library/{stacks[i % 10]}-{i:04d}" if i % 10 == 0 else f"team{i % 37:02d}/image-{i:04d}"
    for t in range(tags):
        config = json.dumps({"architecture": "amd64", "os": "linux", "created": f"2026-01-{t+1:02d}T10:00:00Z",
            "config": {"Labels": {"org.opencontainers.image.description": f"Image {i} of the benchmark, built for a purpose",
                                  "usage": f"podman run --rm {name}"}},
            "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        for blob in (config, layer):
            req("POST", f"/v2/{name}/blobs/uploads/?digest={sha(blob)}", blob,
                {"Content-Type": "application/octet-stream"})
        manifest = json.dumps({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}]}).encode()
        req("PUT", f"/v2/{name}/manifests/1.{t}", manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
print(f"pushed {repos * tags} tags", file=sys.stderr)
PY

url() { echo "http://127.0.0.1:$PORT$1"; }
# Median seconds -> ms of RUNS sequential GETs, after one warm-up.
page_ms() {
    curl -fs -o /dev/null "$(url "$1")"
    for _ in $(seq "$RUNS"); do
        curl -fs -o /dev/null -w '%{time_total}\n' "$(url "$1")"
    done | median | awk '{printf "%.1f", $1 * 1000}'
}
bytes() { curl -fs -o /dev/null -w '%{size_download}' "$(url "$1")"; }

# a repository outside library/ (every tenth is a library stack): 501 % 37 = 20
repo=team20/image-0501
curl -fs -o /dev/null "$(url "/repositories/$repo")" ||
    { echo "bench-site: /repositories/$repo is not there" >&2; exit 1; }
count=$(curl -fs "$(url "/?format=json&n=200")" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["repositories"]))')
[ "$count" = 200 ] || { echo "bench-site: the home page lists $count repositories, expected 200" >&2; exit 1; }

printf '\n%s repositories, %s tags; median of %s requests, one at a time, %s cores; load average before: %s\n' \
    "$REPOS" "$((REPOS * TAGS))" "$RUNS" "$(nproc)" "$LOAD_BEFORE"
printf '%-44s %10s %10s\n' "GET" "ms" "bytes"
for p in "/" "/?format=json" "/?n=200" "/?q=library" "/?after=team20" \
         "/repositories/$repo" "/repositories/$repo?format=json" "/repositories/library/python3.12-0000" \
         "/atomic-host/atomic-43" "/atomic-host" "/downloads" "/catalog"; do
    printf '%-44s %10s %10s\n' "$p" "$(page_ms "$p")" "$(bytes "$p")"
done
printf 'home page weight: %s bytes of HTML, %s of CSS, %s of JS\n' \
    "$(bytes /)" "$(bytes /site/site.css)" "$(bytes /site/site.js)"
printf 'load average after: %s\n' "$(load_average)"
