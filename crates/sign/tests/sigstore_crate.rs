//! corral's cosign format read by the sigstore crate, and the other way
//! round: encrypted private keys, public keys, simple-signing payloads and
//! their signatures. Offline, with keys made here.
//!
//! sigstore's signature-manifest reader (`SignatureLayer::new`) is private
//! and only reached through a registry client, so the `.sig` manifest layout
//! is left to the end-to-end suite; this file checks what is inside it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use corral_registry::ImageRef;
use corral_sign::cosign::{self, SignatureLayer};
use corral_sign::cosign_key;
use corral_sign::payload::COSIGN_TYPE;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sigstore::cosign::payload::simple_signing::SimpleSigning;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};

const PASSWORD: &[u8] = b"correct horse";
const IMAGE: &str = "127.0.0.1:5000/os/base:41";
const DIGEST: &str = "sha256:5b0c3f1e0d2a4c6e8f9b1a3c5e7d9f0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a1c";

fn spki_der(public_pem: &str) -> Vec<u8> {
    p256::PublicKey::from_public_key_pem(public_pem)
        .expect("corral wrote a P-256 public key PEM")
        .to_public_key_der()
        .unwrap()
        .into_vec()
}

fn sigstore_key(public_pem: &str) -> CosignVerificationKey {
    CosignVerificationKey::from_pem(
        public_pem.as_bytes(),
        &SigningScheme::ECDSA_P256_SHA256_ASN1,
    )
    .expect("sigstore reads corral's public key")
}

fn layer(key_pem: &str) -> SignatureLayer {
    let image = ImageRef::parse(IMAGE).unwrap();
    let key = cosign_key::decrypt(key_pem, PASSWORD).unwrap();
    SignatureLayer::new(&image.repository(), DIGEST, &key)
}

#[test]
fn sigstore_opens_corral_private_key() {
    let (private, public) = cosign_key::generate(PASSWORD).unwrap();

    let pair = SigStoreKeyPair::from_encrypted_pem(private.as_bytes(), PASSWORD)
        .expect("sigstore opens corral's encrypted private key");
    assert!(
        matches!(pair, SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_))),
        "sigstore read {pair} instead of a P-256 key"
    );
    assert_eq!(pair.public_key_to_der().unwrap(), spki_der(&public));
    // sigstore's PEM of the public key is corral's, byte for byte but
    // line endings.
    assert_eq!(
        pair.public_key_to_pem().unwrap().replace("\r\n", "\n"),
        public
    );

    assert!(SigStoreKeyPair::from_encrypted_pem(private.as_bytes(), b"wrong").is_err());
    // cosign's older label too.
    let old = private.replace(cosign_key::PEM_LABEL, cosign_key::OLD_PEM_LABEL);
    assert!(SigStoreKeyPair::from_encrypted_pem(old.as_bytes(), PASSWORD).is_ok());
}

#[test]
fn corral_opens_sigstore_private_key() {
    let pair = SigStoreKeyPair::ECDSA(ECDSAKeys::new(EllipticCurve::P256).unwrap());
    let private = pair.private_key_to_encrypted_pem(PASSWORD).unwrap();
    assert!(private.contains(&format!("BEGIN {}", cosign_key::PEM_LABEL)));

    // Through the file reader `corral sign --key` uses.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cosign.key");
    cosign_key::write_private_file(&path, private.as_bytes()).unwrap();
    let secret = cosign_key::load_private(&path, PASSWORD)
        .expect("corral opens sigstore's encrypted private key");
    assert_eq!(
        secret.public_key().to_public_key_der().unwrap().as_bytes(),
        pair.public_key_to_der().unwrap()
    );
    let public = pair.public_key_to_pem().unwrap();
    assert_eq!(
        cosign_key::fingerprint(&p256::PublicKey::from_public_key_pem(&public).unwrap()),
        cosign_key::fingerprint(&secret.public_key())
    );

    let err = cosign_key::load_private(&path, b"wrong").unwrap_err();
    assert!(format!("{err:#}").contains("wrong password"), "{err:#}");
}

#[test]
fn sigstore_verifies_corral_signature() {
    let (private, public) = cosign_key::generate(PASSWORD).unwrap();
    let signed = layer(&private);
    let key = sigstore_key(&public);

    key.verify_signature(
        Signature::Base64Encoded(signed.signature.as_bytes()),
        &signed.payload,
    )
    .expect("sigstore verifies corral's signature");

    // sigstore reads the payload as cosign's simple signing.
    let simple: SimpleSigning = serde_json::from_slice(&signed.payload).unwrap();
    assert_eq!(simple.critical.type_name, COSIGN_TYPE);
    assert!(simple.satisfies_manifest_digest(DIGEST));
    assert_eq!(
        simple.critical.identity.docker_reference,
        "127.0.0.1:5000/os/base"
    );

    // The signature annotation of the layer descriptor is what sigstore checked.
    let descriptor = signed.descriptor();
    assert_eq!(descriptor["mediaType"], cosign::LAYER_TYPE);
    assert_eq!(
        descriptor["annotations"][cosign::SIGNATURE_ANNOTATION],
        signed.signature.as_str()
    );

    // Another payload: the same signature over another digest.
    let tampered = String::from_utf8(signed.payload.clone())
        .unwrap()
        .replace(DIGEST, &DIGEST.replace("5b0c", "5b0d"))
        .into_bytes();
    assert_ne!(tampered, signed.payload);
    assert!(key
        .verify_signature(
            Signature::Base64Encoded(signed.signature.as_bytes()),
            &tampered,
        )
        .is_err());

    // Another key.
    let (_, other_public) = cosign_key::generate(PASSWORD).unwrap();
    assert!(sigstore_key(&other_public)
        .verify_signature(
            Signature::Base64Encoded(signed.signature.as_bytes()),
            &signed.payload,
        )
        .is_err());
}

#[test]
fn corral_verifies_sigstore_signature() {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .unwrap();
    let public_pem = signer
        .to_sigstore_keypair()
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let public = p256::PublicKey::from_public_key_pem(&public_pem).unwrap();

    // A corral payload, signed by sigstore, in a `.sig` manifest layer.
    let (private, _) = cosign_key::generate(PASSWORD).unwrap();
    let mut signed = layer(&private);
    signed.signature = B64.encode(signer.sign(&signed.payload).unwrap());
    let manifest = serde_json::json!({ "layers": [signed.descriptor()] });

    // What `corral verify` does with each layer once the blob is fetched.
    let layers = cosign::signature_layers(&manifest);
    assert_eq!(layers.len(), 1);
    let (payload_digest, sig) = &layers[0];
    assert_eq!(
        payload_digest,
        &corral_registry::sha256_digest(&signed.payload)
    );
    assert!(cosign_key::verify(&public, &signed.payload, sig));
    let image = ImageRef::parse(IMAGE).unwrap();
    let verified = cosign::check_payloads(
        &image,
        DIGEST,
        std::slice::from_ref(&signed.payload),
        COSIGN_TYPE,
        "cosign",
    )
    .expect("the payload names the image");
    assert_eq!(verified.signed_reference, "127.0.0.1:5000/os/base");

    let mut tampered = signed.payload.clone();
    tampered.extend_from_slice(b" ");
    assert!(!cosign_key::verify(&public, &tampered, sig));
    let (_, other_public) = cosign_key::generate(PASSWORD).unwrap();
    let other = p256::PublicKey::from_public_key_pem(&other_public).unwrap();
    assert!(!cosign_key::verify(&other, &signed.payload, sig));
}
