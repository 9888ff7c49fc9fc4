#!/usr/bin/env bash
# Soak test of the mirror (not in CI): pushes, pulls, tag deletes, gc and
# kill -9 + restart of `corral mirror serve`, all at once, for N minutes.
# A push counts only when skopeo exits 0, a delete only on 202. At the end
# every acknowledged push not acknowledged as deleted is read back (its
# manifest by tag and every blob) and compared byte for byte with what was
# pushed, and `corral mirror fsck` runs.
#
#   scripts/soak-mirror.sh [MINUTES]          # default 10
#   CORRAL_BIN=/path/to/corral PUSHERS=4 PULLERS=2 GC_GRACE=0 KILL_EVERY=10 \
#       scripts/soak-mirror.sh 2
#
# Prints `acknowledged: N, lost: M` and fsck's verdict; exits 1 if anything
# acknowledged was lost or fsck found damage. Without CORRAL_BIN it builds
# the release binary. KEEP=1 keeps the work directory. Loopback only.
set -euo pipefail

MINUTES=${1:-10}
PUSHERS=${PUSHERS:-4}
PULLERS=${PULLERS:-2}
GC_GRACE=${GC_GRACE:-0}      # seconds; 0 is the hardest case for gc
KILL_EVERY=${KILL_EVERY:-10} # mean seconds between kill -9s of the server
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in skopeo curl sha256sum python3 shuf htpasswd; do
    command -v "$tool" >/dev/null || { echo "soak-mirror: $tool is required" >&2; exit 2; }
done

WORK=$(mktemp -d /var/tmp/soak-mirror.XXXXXX)
if [[ -z ${CORRAL_BIN:-} ]]; then
    echo "building the release corral binary..." >&2
    (cd "$ROOT" && cargo build --release -q -p corral)
    CORRAL_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/corral
fi
# A private copy: a concurrent build may replace the original.
cp "$CORRAL_BIN" "$WORK/corral"
BIN=$WORK/corral
STORE=$WORK/storage
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
SERVER_PID=
WORKERS=()

cleanup() {
    touch "$WORK/stop"
    for p in "${WORKERS[@]}" $SERVER_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP:-} == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Without users the mirror refuses pushes and deletes.
htpasswd -Bbn soak soak >"$WORK/htpasswd"
start_server() {
    "$BIN" mirror serve --listen "127.0.0.1:$PORT" --storage "$STORE" --htpasswd "$WORK/htpasswd" \
        >>"$WORK/mirror.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$BASE_URL/healthz" && return 0
        sleep 0.1
    done
    echo "soak-mirror: the mirror did not come up; its log:" >&2
    tail -20 "$WORK/mirror.log" >&2
    exit 1
}

echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
skopeo_copy() {
    skopeo --policy "$WORK/policy.json" --registries-conf /dev/null copy -q --retry-times 0 \
        --src-tls-verify=false --dest-tls-verify=false --preserve-digests "$@"
}

# A base layer every image shares (the blob-exists path of a push).
head -c 65536 /dev/urandom >"$WORK/base"
BASE=$(sha256sum "$WORK/base" | cut -d' ' -f1)

# make_image DIR: an OCI layout tagged `src` with the base layer and a layer
# of its own; prints "MANIFEST CONFIG LAYER" (hex digests).
make_image() {
    local L=$1 layer config manifest lsize csize msize
    mkdir -p "$L/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
    cp "$WORK/base" "$L/blobs/sha256/$BASE"
    head -c $((8192 + RANDOM * 2)) /dev/urandom >"$L/layer"
    lsize=$(stat -c %s "$L/layer"); layer=$(sha256sum "$L/layer" | cut -d' ' -f1)
    mv "$L/layer" "$L/blobs/sha256/$layer"
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
        "$BASE" "$layer" >"$L/config"
    csize=$(stat -c %s "$L/config"); config=$(sha256sum "$L/config" | cut -d' ' -f1)
    mv "$L/config" "$L/blobs/sha256/$config"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":65536},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
        "$config" "$csize" "$BASE" "$layer" "$lsize" >"$L/manifest"
    msize=$(stat -c %s "$L/manifest"); manifest=$(sha256sum "$L/manifest" | cut -d' ' -f1)
    mv "$L/manifest" "$L/blobs/sha256/$manifest"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"src"}}]}' \
        "$manifest" "$msize" >"$L/index.json"
    echo "$manifest $config $layer"
}

# Ledger lines (appends of one short line are atomic):
#   acked:    REF DIR MANIFEST CONFIG LAYER
#   deleting: REF      (a delete was tried)
#   deleted:  REF      (the delete was acknowledged)
touch "$WORK/acked" "$WORK/deleting" "$WORK/deleted" "$WORK/events"
event() { echo "$1" >>"$WORK/events"; }

pusher() {
    local i=$1 n=0 dir digests ref
    while [[ ! -e $WORK/stop ]]; do
        n=$((n + 1))
        dir=$WORK/img/$i-$n
        digests=$(make_image "$dir")
        ref=soak/p$i:t$n
        if skopeo_copy --dest-creds soak:soak "oci:$dir:src" "docker://127.0.0.1:$PORT/$ref" 2>/dev/null; then
            echo "$ref $dir $digests" >>"$WORK/acked"
            event push-ok
        else
            event push-failed
        fi
    done
}

puller() {
    local i=$1 line ref dir manifest out
    while [[ ! -e $WORK/stop ]]; do
        line=$(shuf -n1 "$WORK/acked" 2>/dev/null || true)
        [[ -n $line ]] || { sleep 0.5; continue; }
        read -r ref dir manifest _ <<<"$line"
        grep -qxF "$ref" "$WORK/deleting" && continue
        out=$WORK/pull-$i
        rm -rf "$out"
        if skopeo_copy "docker://127.0.0.1:$PORT/$ref" "oci:$out:x" 2>/dev/null; then
            if grep -q "sha256:$manifest" "$out/index.json"; then event pull-ok; else event pull-wrong; fi
        else
            event pull-failed
        fi
    done
}

deleter() {
    local line ref code
    while [[ ! -e $WORK/stop ]]; do
        sleep "$((1 + RANDOM % 3))"
        line=$(shuf -n1 "$WORK/acked" 2>/dev/null || true)
        [[ -n $line ]] || continue
        ref=${line%% *}
        grep -qxF "$ref" "$WORK/deleting" && continue
        echo "$ref" >>"$WORK/deleting"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -u soak:soak -X DELETE \
            "$BASE_URL/v2/${ref%:*}/manifests/${ref##*:}" || true)
        if [[ $code == 202 ]]; then echo "$ref" >>"$WORK/deleted"; event delete-ok; else event delete-failed; fi
    done
}

collector() {
    while [[ ! -e $WORK/stop ]]; do
        if "$BIN" mirror gc --storage "$STORE" --grace-period "$GC_GRACE" --json >/dev/null 2>>"$WORK/gc.log"; then
            event gc-ok
        else
            event gc-failed
        fi
        sleep 1
    done
}

start_server
for i in $(seq "$PUSHERS"); do pusher "$i" & WORKERS+=($!); done
for i in $(seq "$PULLERS"); do puller "$i" & WORKERS+=($!); done
deleter & WORKERS+=($!)
collector & WORKERS+=($!)

END=$((SECONDS + MINUTES * 60))
echo "soaking for $MINUTES min: $PUSHERS pushers, $PULLERS pullers, deletes, gc (grace ${GC_GRACE}s), kill -9 every ~${KILL_EVERY}s" >&2
while ((SECONDS < END)); do
    sleep "$((KILL_EVERY / 2 + RANDOM % (KILL_EVERY + 1)))"
    ((SECONDS < END)) || break
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    event kill
    start_server
done
touch "$WORK/stop"
wait "${WORKERS[@]}" 2>/dev/null || true
WORKERS=()

# --- verification: every acknowledged, not deleted push, byte for byte
fetch_cmp() { # URL FILE: the body must equal FILE
    curl -fsS --max-time 30 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$WORK/got" "$1" 2>>"$WORK/verify.log" && cmp -s "$WORK/got" "$2"
}
acked=0 lost=0 deleted=0 uncertain=0
while read -r ref dir manifest config layer; do
    if grep -qxF "$ref" "$WORK/deleted"; then deleted=$((deleted + 1)); continue; fi
    repo=${ref%:*} tag=${ref##*:}
    if grep -qxF "$ref" "$WORK/deleting"; then
        # The delete may or may not have happened; if the tag is there it
        # must be whole.
        code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/v2/$repo/manifests/$tag" || true)
        if [[ $code == 404 ]]; then uncertain=$((uncertain + 1)); continue; fi
    fi
    acked=$((acked + 1))
    bad=
    fetch_cmp "$BASE_URL/v2/$repo/manifests/$tag" "$dir/blobs/sha256/$manifest" || bad="manifest sha256:$manifest"
    for b in "$config" "$BASE" "$layer"; do
        [[ -n $bad ]] && break
        fetch_cmp "$BASE_URL/v2/$repo/blobs/sha256:$b" "$dir/blobs/sha256/$b" || bad="blob sha256:$b"
    done
    if [[ -n $bad ]]; then
        lost=$((lost + 1))
        echo "LOST $ref: $bad" >&2
    fi
done <"$WORK/acked"

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
fsck_rc=0
"$BIN" mirror fsck --storage "$STORE" --json >"$WORK/fsck.json" 2>>"$WORK/fsck.log" || fsck_rc=$?
verdict=$(python3 - "$WORK/fsck.json" "$fsck_rc" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except ValueError:
    print(f"no report (exit {sys.argv[2]})"); sys.exit()
damage = {k: v for k, v in r.items() if k in ("corrupt_blobs", "unresolved_tags", "broken_manifests",
                                              "missing_references", "malformed_links", "dangling_links") and v}
state = "clean" if sys.argv[2] == "0" and not damage else f"DAMAGED (exit {sys.argv[2]})"
print(f"{state}: {r.get('blobs_checked')} blobs checked, {len(r.get('temp_files', []))} temp files"
      + "".join(f"; {k}: {v}" for k, v in damage.items()))
PY
)
count() { grep -cxF "$1" "$WORK/events" || true; }
echo "pushes: $(count push-ok) ok, $(count push-failed) failed; pulls: $(count pull-ok) ok, $(count pull-failed) failed, $(count pull-wrong) wrong digest"
echo "deletes: $(count delete-ok) ok, $(count delete-failed) failed; gc: $(count gc-ok) ok, $(count gc-failed) failed; kill -9: $(count kill)"
echo "acknowledged: $acked, lost: $lost (and $deleted deleted, $uncertain deletes unanswered)"
echo "fsck: $verdict"
[[ $(count gc-failed) == 0 ]] || { echo "last gc errors:" >&2; tail -3 "$WORK/gc.log" >&2; }
((lost == 0)) && [[ $fsck_rc == 0 ]]
