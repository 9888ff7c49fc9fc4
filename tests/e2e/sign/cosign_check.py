#!/usr/bin/env python3
"""An independent check of a cosign-format signature, from cosign's published
layout (not corral's code): the `sha256-<hex>.sig` manifest's
`application/vnd.dev.cosign.simplesigning.v1+json` layers carry the payload,
the annotation `dev.cosignproject.cosign/signature` the base64 DER
ECDSA-P256/SHA-256 signature over the payload bytes.

usage: cosign_check.py PUBKEY IMAGE_DIGEST registry http://HOST/REPO
       cosign_check.py PUBKEY IMAGE_DIGEST layout DIR TAG
Prints the verified payload's docker-reference; exits 1 when nothing verifies.
"""
import base64, hashlib, json, os, sys, urllib.request
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.exceptions import InvalidSignature

pub_path, image_digest, mode = sys.argv[1:4]
key = serialization.load_pem_public_key(open(pub_path, "rb").read())
assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"

def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()

if mode == "registry":
    base = sys.argv[4]
    host, repo = base.split("://", 1)[1].split("/", 1)
    def get(path, accept=None):
        req = urllib.request.Request(f"http://{host}/v2/{repo}/{path}")
        if accept: req.add_header("Accept", accept)
        return urllib.request.urlopen(req).read()
    manifest = get("manifests/" + image_digest.replace(":", "-") + ".sig",
                   "application/vnd.oci.image.manifest.v1+json")
    blob = lambda d: get("blobs/" + d)
else:
    layout, tag = sys.argv[4], sys.argv[5]
    read = lambda d: open(os.path.join(layout, "blobs", *d.split(":")), "rb").read()
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
    manifest = read(desc["digest"])
    blob = read

ok = 0
for layer in json.loads(manifest)["layers"]:
    if layer["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json":
        continue
    payload = blob(layer["digest"])
    assert sha(payload) == layer["digest"], "payload does not match its layer digest"
    sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    try:
        key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        continue
    p = json.loads(payload)
    assert p["critical"]["type"] == "cosign container image signature", p
    assert p["critical"]["image"]["docker-manifest-digest"] == image_digest, p
    print(p["critical"]["identity"]["docker-reference"])
    ok += 1
sys.exit(0 if ok else 1)
