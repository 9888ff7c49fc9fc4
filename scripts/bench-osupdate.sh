#!/usr/bin/env bash
# Bytes an Atomic host fetches to update by one package, three ways: the
# OS image's changed layers (the ostree container format, `corral compose
# export`), the static delta `corral compose run` publishes, and a plain
# object-by-object `ostree pull`. And the OS image's layers reused across
# three releases.
#
#   bash scripts/bench-osupdate.sh
#
# The sample stream (ostree-refs/sample-atomic.toml) composed from the
# sample RPMs three times: corral-hello 1.0, 1.1, 1.2, nothing else
# changed. A static file server on 127.0.0.1 counts the body bytes it
# sends (HTTP headers not counted); a client holding release
# 1 (pulled first, not counted) pulls release 2: ostree with the static
# delta, ostree object by object, and skopeo from the same server acting
# as a read-only registry for the exported images, into an OCI layout
# holding release 1 (so it fetches the manifest, the config and the
# changed layers). The blobs release 2's manifest names and release 1's
# does not are also summed from the layouts, as a cross-check.
# CORRAL_BUILD=DIR uses the corral and corral-ostree built in DIR.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"
bench_require bench-osupdate ostree rpmbuild createrepo_c dnf skopeo python3 curl gpg
bench_workdir corral-bench-osupdate
bench_corral debug
bench_gpg_key

sed -e 's/^gpg-key = .*/gpg-key = "bench@corral.invalid"/' \
    "$ROOT/ostree-refs/sample-atomic.toml" > "$WORK/sample-atomic.toml"
ostree --repo="$WORK/repo" init --mode=archive
ref=$(sed -n 's/^ref = "\(.*\)"/\1/p' "$WORK/sample-atomic.toml")

commits=()
for v in 1.0 1.1 1.2; do
    HELLO_VERSION=$v bash "$ROOT/tests/fixtures/rpms/build-repo.sh" "$WORK/rpms-$v" >/dev/null 2>&1
    CORRAL_SAMPLE_REPOS=$WORK/rpms-$v "$CORRAL" compose run "$WORK/sample-atomic.toml" \
        --repo "$WORK/repo" --json > "$WORK/compose-$v.json"
    commits+=("$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[0]; assert v["result"]=="committed", v; print(v["checksum"])' "$WORK/compose-$v.json")")
    n=${#commits[@]}
    "$CORRAL" compose export --repo "$WORK/repo" "${commits[$((n - 1))]}" \
        -o "oci:$WORK/os$n:r$n" --json > "$WORK/export$n.json"
done

# The OCI side: blobs of release N's manifest (and config) that release
# M's lacks, from the layouts.
python3 - "$WORK" > "$WORK/oci.txt" <<'PY'
import json, os, sys
work = sys.argv[1]
def image(n):
    lay = f"{work}/os{n}"
    idx = json.load(open(f"{lay}/index.json"))
    d = idx["manifests"][0]["digest"]
    mbytes = os.path.getsize(f"{lay}/blobs/sha256/{d[7:]}")
    m = json.load(open(f"{lay}/blobs/sha256/{d[7:]}"))
    layers = {l["digest"]: l["size"] for l in m["layers"]}
    return mbytes, m["config"]["size"], layers
imgs = {n: image(n) for n in (1, 2, 3)}
def fetch(old, new):
    mb, cb, layers = imgs[new]
    have = imgs[old][2]
    changed = {d: s for d, s in layers.items() if d not in have}
    return mb + cb + sum(changed.values()), len(changed), len(layers)
b, changed, total = fetch(1, 2)
print(f"oci12 {b} {changed} {total} {sum(imgs[2][2].values())}")
for old, new in ((1, 2), (2, 3), (1, 3)):
    b, changed, total = fetch(old, new)
    print(f"reuse {old} {new} {total - changed} {total} {b}")
PY

# A static file server on the loopback that counts the body bytes it
# sends: the OSTree repository under /ostree/, and the three OS images as
# a read-only registry (/v2/os/manifests/rN, /v2/os/blobs/DIGEST) read
# from their layouts.
mkdir -p "$WORK/www"
ln -s "$WORK/repo" "$WORK/www/ostree"
port=$(free_port)
python3 - "$WORK" "$port" "$WORK/served.log" <<'PY' &
import functools, http.server, json, os, re, sys
work, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
layouts = [f"{work}/os{n}" for n in (1, 2, 3)]
def blob(digest):
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        return None
    for lay in layouts:
        p = f"{lay}/blobs/sha256/{digest[7:]}"
        if os.path.exists(p):
            return p
def manifest(ref):
    if ref.startswith("sha256:"):
        return blob(ref)
    for lay in layouts:
        for m in json.load(open(f"{lay}/index.json"))["manifests"]:
            if m["annotations"]["org.opencontainers.image.ref.name"] == ref:
                return blob(m["digest"])
class H(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, src, dst):
        n = 0
        while True:
            b = src.read(1 << 16)
            if not b:
                break
            dst.write(b)
            n += len(b)
        with open(log, "a") as f:
            f.write(f"{n} {self.path}\n")
    def registry(self, body):
        path, ctype = None, "application/octet-stream"
        if self.path == "/v2/":
            path = os.devnull
        elif m := re.fullmatch(r"/v2/os/manifests/([^/]+)", self.path):
            path, ctype = manifest(m[1]), "application/vnd.oci.image.manifest.v1+json"
        elif m := re.fullmatch(r"/v2/os/blobs/([^/]+)", self.path):
            path = blob(m[1])
        if not path:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        if path != os.devnull:
            self.send_header("Docker-Content-Digest", "sha256:" + os.path.basename(path))
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                self.copyfile(f, self.wfile)
    def do_GET(self):
        if self.path.startswith("/v2/"):
            return self.registry(True)
        return super().do_GET()
    def do_HEAD(self):
        if self.path.startswith("/v2/"):
            return self.registry(False)
        return super().do_HEAD()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(H, directory=f"{work}/www")).serve_forever()
PY
PIDS+=("$!")
: > "$WORK/served.log"
wait_http "http://127.0.0.1:$port/ostree/config"
wait_http "http://127.0.0.1:$port/v2/"

served() { awk '{s += $1} END {print s + 0}' "$WORK/served.log"; }

# pull FLAGS: a client at release 1 pulls release 2; prints the bytes
# the server sent for the second pull and ostree's own count.
pull() {
    local client=$WORK/client before
    rm -rf "$client"
    ostree --repo="$client" init --mode=bare-user
    ostree --repo="$client" remote add --set=gpg-verify=true --set=gpg-verify-summary=true \
        --gpg-import="$WORK/key.asc" origin "http://127.0.0.1:$port/ostree" >/dev/null
    # shellcheck disable=SC2086
    ostree --repo="$client" pull $1 origin "$ref@${commits[0]}" > /dev/null
    before=$(served)
    # shellcheck disable=SC2086
    ostree --repo="$client" pull $1 origin "$ref@${commits[1]}" > "$WORK/pull.out"
    test "$(ostree --repo="$client" rev-parse "origin:$ref")" = "${commits[1]}"
    echo "$(( $(served) - before )) $(grep -oE '[0-9.]+ ([kKMG]i)?B(ytes)? transferred' "$WORK/pull.out" | tail -1 | tr ' ' '_')"
}
# A registry client holding release 1 (an OCI layout, as skopeo keeps
# one) copies release 2: skopeo fetches only the blobs the layout lacks.
skopeo_pull() {
    local before
    rm -rf "$WORK/client-oci"
    skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$port/os:r1" "oci:$WORK/client-oci:r1"
    before=$(served)
    skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$port/os:r2" "oci:$WORK/client-oci:r2"
    echo "$(( $(served) - before ))"
}
oci_served=$(skopeo_pull)
read -r delta_bytes delta_ostree < <(pull "")
read -r plain_bytes plain_ostree < <(pull "--disable-static-deltas")

read -r _ oci_bytes oci_changed oci_total oci_all < <(grep '^oci12' "$WORK/oci.txt")
echo "corral-hello 1.0 -> 1.1 on the sample stream (${commits[0]:0:12} -> ${commits[1]:0:12}); load average $(load_average)"
echo
echo "| update from release 1 to release 2 through | bytes fetched | |"
echo "|---|---:|---|"
echo "| the OS image's changed layers | $oci_served | served to skopeo, bodies; from the manifests: $oci_changed of $oci_total layers changed, $oci_bytes bytes with manifest and config (the whole image: $oci_all bytes of layers) |"
echo "| the static delta | $delta_bytes | served, bodies; ostree says ${delta_ostree//_/ } |"
echo "| a plain ostree pull (--disable-static-deltas) | $plain_bytes | served, bodies; ostree says ${plain_ostree//_/ } |"
echo
echo "| OS image | layers reused | of | bytes to fetch |"
echo "|---|---:|---:|---:|"
while read -r _ old new reused total bytes; do
    echo "| release $old -> release $new | $reused | $total | $bytes |"
done < <(grep '^reuse' "$WORK/oci.txt")
