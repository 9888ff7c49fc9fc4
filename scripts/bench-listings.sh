#!/usr/bin/env bash
# Benchmark: listings of the corral mirror vs Debian's docker-registry
# (distribution 2.8) with the same content, loopback only. Needs wrk,
# docker-registry, htpasswd, curl, python3.
#
#   scripts/bench-listings.sh                 # 1 run of 3 s per measurement
#   RUNS=3 DURATION=5 scripts/bench-listings.sh
#
# Both registries get repositories t100, t1000 and t10000 with that many
# tags (one small manifest pushed under every tag) and 1,000 more
# repositories with one tag each. Then, with 16 connections: tags/list of
# each repository, whole and `?n=100`; `_catalog?n=100` and `?n=1000`
# (distribution refuses larger pages); and (corral only, distribution has none) a 100-row page of
# catalog.json and of the HTML catalog inside the 10,000-tag repository.
# Prints requests/s and mean latency of both and the corral/distribution
# ratio of requests/s, with the load average before and after.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

RUNS=${RUNS:-1}
DURATION=${DURATION:-3}
REPOS=${REPOS:-1000}
export DURATION

bench_require bench-listings wrk docker-registry htpasswd curl python3
bench_serve_binary
bench_workdir bench-listings
LOAD_BEFORE=$(load_average)

# --- distribution
bench_start_distribution delete

# --- corral (pushes need an account)
htpasswd -B -C 4 -b -c "$WORK/htpasswd" bench bench 2>/dev/null
CPORT=$(free_port)
RUST_LOG=warn "$SERVE" --listen "127.0.0.1:$CPORT" --storage "$WORK/corral" \
    --htpasswd "$WORK/htpasswd" >/dev/null 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$CPORT/healthz"

# --- content: one config and layer blob in t100, mounted into every other
# repository; one manifest pushed under every tag (keep-alive, one client)
populate() { # port [user:password]
    PYTHONPATH="$ROOT/scripts/lib" python3 - "$1" "${2:-}" "$REPOS" <<'PY'
import json, sys
from registry_client import Registry, sha
port, cred, repos = sys.argv[1], sys.argv[2], int(sys.argv[3])
req = Registry(port, cred).req
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()
layer = b"bench layer\n"
def upload(repo, blob):
    loc = req("POST", f"/v2/{repo}/blobs/uploads/").getheader("Location")
    if loc.startswith("http"):
        loc = "/" + loc.split("/", 3)[3]
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={sha(blob)}", blob,
        {"Content-Type": "application/octet-stream"})
def mount(repo, blob):
    req("POST", f"/v2/{repo}/blobs/uploads/?mount={sha(blob)}&from=t100")
manifest = json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(layer), "size": len(layer)}]}).encode()
def tag(repo, t):
    req("PUT", f"/v2/{repo}/manifests/{t}", manifest,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
for blob in (config, layer):
    upload("t100", blob)
for n in (100, 1000, 10000):
    repo = f"t{n}"
    if n != 100:
        for blob in (config, layer):
            mount(repo, blob)
    for i in range(n):
        tag(repo, f"v{i:05d}")
for i in range(repos):
    repo = f"r{i:04d}"
    for blob in (config, layer):
        mount(repo, blob)
    tag(repo, "latest")
PY
}
echo "pushing 11,100 tags and $REPOS repositories to distribution..." >&2
populate "$DPORT"
echo "pushing the same to corral..." >&2
populate "$CPORT" bench:bench

# --- measurements
measure() { # url -> "REQ_PER_S LATENCY_MS" (medians)
    local req lat
    req=$(for _ in $(seq "$RUNS"); do wrk_req 16 "$1" | cut -d' ' -f1; done | median)
    lat=$(for _ in $(seq "$RUNS"); do wrk_req 16 "$1" | cut -d' ' -f2; done | median)
    echo "$req $lat"
}
row() { # label path-on-both | label - corral-path
    local label=$1 dpath=$2 cpath=${3:-$2} dr=- dl=- cr cl
    if [ "$dpath" != - ]; then
        read -r dr dl < <(measure "http://127.0.0.1:$DPORT$dpath")
    fi
    read -r cr cl < <(measure "http://127.0.0.1:$CPORT$cpath")
    printf '%-36s %12s %10s %12s %10s %8s\n' "$label" "$dr" "$dl" "$cr" "$cl" \
        "$( [ "$dr" = - ] && echo - || ratio "$cr" "$dr")"
}
check_count() { # port path jq-ish field expected
    local got
    got=$(curl -fs "http://127.0.0.1:$1$2" | python3 -c "import json,sys; print(len(json.load(sys.stdin)['$3']))")
    [ "$got" = "$4" ] || { echo "bench-listings: $2 on port $1 lists $got, expected $4" >&2; exit 1; }
}
for port in "$DPORT" "$CPORT"; do
    check_count "$port" /v2/t10000/tags/list tags 10000
    check_count "$port" "/v2/_catalog?n=1000" repositories 1000
done

echo "measuring..." >&2
printf '\n%s runs of %ss each, 16 connections, loopback, %s cores; load average before: %s\n' \
    "$RUNS" "$DURATION" "$(nproc)" "$LOAD_BEFORE"
printf '%-36s %12s %10s %12s %10s %8s\n' "GET" "distr. req/s" "distr. ms" "corral req/s" "corral ms" "ratio"
for n in 100 1000 10000; do
    row "tags/list, $n tags" "/v2/t$n/tags/list"
    row "tags/list?n=100, $n tags" "/v2/t$n/tags/list?n=100"
    row "tags/list?n=100&last=v05000, $n tags" "/v2/t$n/tags/list?n=100&last=v05000"
done
row "_catalog?n=100, $((REPOS + 3)) repositories" "/v2/_catalog?n=100"
row "_catalog?n=1000, $((REPOS + 3)) repositories" "/v2/_catalog?n=1000"
row "catalog.json, 100 rows of 10,000 tags" - "/catalog.json?n=100&last=t10000%3Av05000"
row "HTML catalog, 100 rows of 10,000 tags" - "/catalog?n=100&last=t10000%3Av05000"
row "HTML catalog, first page" - "/catalog"
printf 'load average after: %s\n' "$(load_average)"
