#!/usr/bin/env bash
# Benchmark of layer packing: corral-oci (gzip, zstd) against `umoci repack`
# and `tar | zstd -3 -T0` on the same ~900 MB tree, in one run. Not a test:
# prints a table of medians (wall time, CPU time, peak RSS, layer size), the
# ratios and the load average.
#
#   scripts/bench-pack.sh            # 3 runs each
#   RUNS=5 GZIP_LEVEL=6 scripts/bench-pack.sh
#   PACK_BIN=/path/to/pack scripts/bench-pack.sh   # a release build of the example made before
#   ONLY=zstd scripts/bench-pack.sh  # only corral zstd and `tar | zstd -3 -T0`
#
# The tree is made once under $BENCH_DIR (default /var/tmp/corral-bench) from
# /usr/lib/x86_64-linux-gnu and /usr/share/locale (plus /usr/share/doc if that
# is not ~800 MB) and reused. Caches are warm for every tool (one warm-up read).
#
# umoci: the fair equivalent of "pack this directory as a layer" is
# `umoci repack` of a bundle whose rootfs is the tree, unpacked from an empty
# image (`umoci init` + `umoci new` + `umoci unpack`); only repack is timed.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

BENCH_DIR=${BENCH_DIR:-/var/tmp/corral-bench}
RUNS=${RUNS:-3}
GZIP_LEVEL=${GZIP_LEVEL:-}
ZSTD_LEVEL=${ZSTD_LEVEL:-}
ONLY=${ONLY:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TREE=$BENCH_DIR/tree
WORK=$BENCH_DIR/work

need() { command -v "$1" >/dev/null || { echo "missing $1 (apt-get install $2)" >&2; exit 1; }; }
if [[ ! -x /usr/bin/time ]]; then apt-get install -y -qq time >/dev/null; fi
need umoci umoci
need zstd zstd
need tar tar

if [[ ! -f $BENCH_DIR/tree.done ]]; then
    echo "making the tree in $TREE" >&2
    rm -rf "$TREE" && mkdir -p "$TREE/usr/lib" "$TREE/usr/share"
    cp -a /usr/lib/x86_64-linux-gnu "$TREE/usr/lib/"
    cp -a /usr/share/locale "$TREE/usr/share/"
    if (( $(du -sm "$TREE" | cut -f1) < 800 )); then cp -a /usr/share/doc "$TREE/usr/share/"; fi
    touch "$BENCH_DIR/tree.done"
fi
TREE_MB=$(du -sm "$TREE" | cut -f1)

rm -rf "$WORK" && mkdir -p "$WORK"
if [[ -n ${PACK_BIN:-} ]]; then
    cp "$PACK_BIN" "$WORK/pack"
else
    echo "building the pack example" >&2
    (cd "$REPO" && cargo build --quiet --release -p corral-oci --example pack)
    # A private copy: other builds into the same target directory may
    # replace the example while this runs.
    cp "$CARGO_TARGET_DIR/release/examples/pack" "$WORK/pack"
fi
PACK=$WORK/pack

# Warm the page cache for every contender alike.
tar -C "$TREE" -cf - . | cat >/dev/null

# measure NAME OUTPUT_FILE_OR_DIR CMD...: appends "name wall_s rss_kb bytes cpu_s".
# CPU time (user+sys) is reported too: on a machine shared with other work,
# wall times swing with the load, CPU time much less.
measure() {
    local name=$1 out=$2; shift 2
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null
    local wall rss cpu bytes
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {s += $2} END {print s}' "$WORK/time.txt")
    if [[ -d $out ]]; then
        # The layer is the largest blob of the layout.
        bytes=$(find "$out/blobs" -type f -printf '%s\n' | sort -n | tail -1)
    else
        bytes=$(stat -c %s "$out")
    fi
    echo "$name $wall $rss $bytes $cpu" >>"$WORK/results.txt"
    echo "  $name: ${wall}s wall, ${cpu}s cpu, $((rss / 1024)) MB RSS, $bytes bytes" >&2
}

umoci_prepare() {
    rm -rf "$WORK/umoci" && mkdir -p "$WORK/umoci"
    umoci init --layout "$WORK/umoci/layout"
    umoci new --image "$WORK/umoci/layout:base"
    umoci unpack --image "$WORK/umoci/layout:base" "$WORK/umoci/bundle" >/dev/null
    cp -a "$TREE/." "$WORK/umoci/bundle/rootfs/"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS" >&2
    rm -rf "$WORK/gz" "$WORK/zst" "$WORK/tar.zst"
    if [[ $ONLY != zstd ]]; then
        measure corral-gzip "$WORK/gz" "$PACK" "$TREE" "$WORK/gz" bench gzip $GZIP_LEVEL
    fi
    measure corral-zstd "$WORK/zst" "$PACK" "$TREE" "$WORK/zst" bench zstd $ZSTD_LEVEL
    if [[ $ONLY != zstd ]]; then
        umoci_prepare
        measure umoci-repack "$WORK/umoci/layout" umoci repack --image "$WORK/umoci/layout:base" "$WORK/umoci/bundle"
    fi
    measure tar-zstd "$WORK/tar.zst" bash -c "tar -C '$TREE' -cf - . | zstd -3 -T0 -q -o '$WORK/tar.zst'"
done
rm -rf "$WORK/umoci"

echo
echo "tree: $TREE ($TREE_MB MB), $RUNS runs, $(nproc) cores, medians"
awk -v runs="$RUNS" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v load0="$LOAD_BEFORE" '
    { wall[$1, ++n[$1]] = $2; rss[$1, n[$1]] = $3; size[$1, n[$1]] = $4; cpu[$1, n[$1]] = $5 }
    function median(arr, name, k,   i, j, t, v) {
        for (i = 1; i <= k; i++) v[i] = arr[name, i]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
        printf "%-14s %9s %9s %9s %12s\n", "tool", "wall s", "cpu s", "RSS MB", "layer MB"
        split("corral-gzip umoci-repack corral-zstd tar-zstd", order, " ")
        for (o = 1; o <= 4; o++) {
            t = order[o]; k = n[t]
            if (!k) continue
            W[t] = median(wall, t, k); C[t] = median(cpu, t, k); R[t] = median(rss, t, k); S[t] = median(size, t, k)
            printf "%-14s %9.2f %9.2f %9.0f %12.1f\n", t, W[t], C[t], R[t] / 1024, S[t] / 1e6
        }
        if (n["corral-gzip"]) printf "\ngzip: corral/umoci wall %.2fx (speed-up %.2fx), cpu %.2fx, size %.3f\n", W["corral-gzip"] / W["umoci-repack"], W["umoci-repack"] / W["corral-gzip"], C["corral-gzip"] / C["umoci-repack"], S["corral-gzip"] / S["umoci-repack"]
        printf "zstd: corral/(tar|zstd) wall %.2fx, cpu %.2fx, size %.3f\n", W["corral-zstd"] / W["tar-zstd"], C["corral-zstd"] / C["tar-zstd"], S["corral-zstd"] / S["tar-zstd"]
        printf "load average before: %s, at the end: %s\n", load0, load
    }' "$WORK/results.txt"
