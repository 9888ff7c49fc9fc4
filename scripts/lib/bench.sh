# shellcheck shell=bash
# Shared helpers of the bench-*.sh scripts: source it, do not run it.
#   . "$(dirname "$0")/lib/bench.sh"
# Sets ROOT (the checkout) and CARGO_TARGET_DIR (unless given; the same
# default as scripts/setup.sh).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}

# A free TCP port on the loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 30 s for a URL to answer 2xx; exits the script otherwise.
wait_http() { for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# "a / b" as "1.23x", or n/a when b is 0 or missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

# wrk's requests per second and average latency in ms for CONNS connections
# on URL for DURATION seconds (default 3): prints "REQ_PER_S LATENCY_MS".
# Extra arguments go to wrk (headers).
wrk_req() { # conns url [wrk args...]
    local conns=$1 url=$2 out
    shift 2
    out=$(wrk -t "$(( conns < 2 ? 1 : 2 ))" -c "$conns" -d "${DURATION:-3}s" --latency "$@" "$url")
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench: non-2xx answers from $url" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$out" | awk '
        /Requests\/sec/ { r = $2 }
        /^ +Latency / && !l { v = $2; u = v; gsub(/[0-9.]/, "", u); n = v + 0;
            if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
            l = n }
        END { printf "%s %.2f\n", r, l }'
}

# The load average now (1, 5, 15 minutes), for the benchmark record.
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# Fails with exit 2 naming the first missing tool: bench_require NAME TOOL...
bench_require() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name: $tool is required" >&2; exit 2; }
    done
}

# Sets SERVE to the release mirror server unless the caller gave one (a
# private copy is safe from other builds into a shared target directory).
bench_serve_binary() {
    if [ -z "${SERVE:-}" ]; then
        echo "building the release serve example..." >&2
        (cd "$ROOT" && cargo build --release -q -p corral-mirror --example serve)
        SERVE="$CARGO_TARGET_DIR/release/examples/serve"
    fi
}

# A scratch directory WORK and a list PIDS of servers, both removed or
# stopped when the script exits: bench_workdir NAME
bench_workdir() {
    WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_CLEANUP:-}" ] && $BENCH_CLEANUP
    [ -n "${GNUPGHOME:-}" ] && { gpgconf --kill gpg-agent 2>/dev/null || true; }
    # libostree makes deployment roots immutable
    find "$WORK" -maxdepth 6 -path '*ostree/deploy/*/deploy/*' -type d -prune -exec chattr -i {} + 2>/dev/null || true
    rm -rf "$WORK"
}

# A build of corral and corral-ostree (PROFILE release, the default, or
# debug), copied to $WORK (other builds into the same target directory may
# replace them while a benchmark runs); sets CORRAL to the copy. Needs
# bench_workdir first. bench_corral [release|debug]
bench_corral() {
    local profile=${1:-release} flag=--release dir
    [ "$profile" = debug ] && flag=
    if [ -n "${CORRAL_BUILD:-}" ]; then
        # CORRAL_BUILD=DIR: the corral and corral-ostree built earlier into
        # DIR, so a run on a quiet machine does not wait for a build
        dir=$CORRAL_BUILD
    else
        # shellcheck disable=SC2086
        cargo build --quiet $flag --locked --manifest-path "$ROOT/Cargo.toml" -p corral
        dir=$CARGO_TARGET_DIR/$profile
    fi
    cp "$dir/corral" "$WORK/corral"
    cp "$dir/corral-ostree" "$WORK/corral-ostree"
    CORRAL=$WORK/corral
}

# A GPG home in $WORK/gnupg with a signing key for EMAIL (default
# bench@corral.invalid), its public key at $WORK/key.asc; exports
# GNUPGHOME. bench_gpg_key [EMAIL]
bench_gpg_key() {
    local email=${1:-bench@corral.invalid}
    export GNUPGHOME=$WORK/gnupg
    mkdir -m 0700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key "corral bench <$email>" rsa2048 sign never 2>/dev/null
    gpg --batch --armor --export "$email" > "$WORK/key.asc"
}

# The set-up of the benchmarks that compose and serve an OSTree tree
# (bench-host, bench-pull): Debian packages, a scratch directory, the debug
# corral (CORRAL), a signing key and the tree at $WORK/tree.
# bench_ostree_setup NAME
bench_ostree_setup() {
    # shellcheck source=scripts/setup.sh
    source "$ROOT/scripts/setup.sh"
    corral_setup
    bench_workdir "$1"
    bench_corral debug
    bench_gpg_key
    bench_ostree_tree "$WORK/tree"
}

# An Atomic Host tree to compose at TREE (~300 MB): this machine's
# /usr/share/locale and /usr/lib/gcc, a stand-in kernel and initramfs, an
# os-release. bench_ostree_tree TREE
bench_ostree_tree() {
    local tree=$1
    mkdir -p "$tree/usr/lib/modules/6.1.0-bench" "$tree/usr/share" "$tree/etc"
    cp -a /usr/share/locale "$tree/usr/share/"
    cp -a /usr/lib/gcc "$tree/usr/lib/"
    head -c 12M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
    head -c 30M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/initramfs.img"
    printf 'ID=corral\nVERSION_ID=43\n' > "$tree/etc/os-release"
}

# `corral mirror serve` of the OSTree repository REPO on a free loopback
# port, waited for; sets MPORT. bench_serve_ostree REPO
bench_serve_ostree() {
    MPORT=$(free_port)
    "$CORRAL" mirror serve --listen "127.0.0.1:$MPORT" --storage "$WORK/storage" --ostree-repo "$1" \
        >"$WORK/mirror.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$MPORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "the mirror did not start:" >&2
    cat "$WORK/mirror.log" >&2
    exit 1
}

# An OCI layout at $WORK/layout (L) holding one image, tag v1, with one
# random uncompressed layer of BLOB_MB MiB; sets L, LAYER, LSIZE, CONFIG,
# MANIFEST (digests without "sha256:") and a permissive skopeo policy at
# $WORK/policy.json.
bench_one_layer_layout() {
    L="$WORK/layout"
    mkdir -p "$L/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$L/oci-layout"
    head -c "$((BLOB_MB << 20))" /dev/urandom > "$WORK/layer"
    LAYER=$(bench_put "$WORK/layer"); LSIZE=$((BLOB_MB << 20))
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$LAYER" > "$WORK/config"
    local csize msize
    csize=$(stat -c %s "$WORK/config"); CONFIG=$(bench_put "$WORK/config")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
        "$CONFIG" "$csize" "$LAYER" "$LSIZE" > "$WORK/manifest"
    msize=$(stat -c %s "$WORK/manifest"); MANIFEST=$(bench_put "$WORK/manifest")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
        "$MANIFEST" "$msize" > "$L/index.json"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"
}
bench_put() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$L/blobs/sha256/$d"; echo "$d"; }

# Starts Debian's docker-registry (distribution) on a free loopback port
# with its storage in $WORK/distribution and waits for it; sets DPORT and
# DPID. `bench_start_distribution delete` also enables deletes.
bench_start_distribution() {
    local delete=""
    [ "${1:-}" = delete ] && delete=$'\n  delete:\n    enabled: true'
    DPORT=$(free_port)
    cat > "$WORK/distribution.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/distribution$delete
http:
  addr: 127.0.0.1:$DPORT
YAML
    docker-registry serve "$WORK/distribution.yml" >/dev/null 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    wait_http "http://127.0.0.1:$DPORT/v2/"
}

# hyperfine's median wall time in ms of each command, in order, one a line,
# run side by side in one hyperfine run (RUNS runs each, default 30, after
# WARMUP warm-ups, default 3; exit codes ignored). Needs hyperfine (apt-get install hyperfine).
hyperfine_medians() { # cmd...
    local json
    json=$(mktemp)
    hyperfine -N -i --style none -w "${WARMUP:-3}" -r "${RUNS:-30}" --export-json "$json" "$@" >/dev/null
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]: print("%.2f" % (r["median"] * 1000))' "$json"
    rm -f "$json"
}
