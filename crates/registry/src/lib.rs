//! The client side of the OCI distribution API, shared by `corral sign`
//! (pushing signatures, reading manifests and referrers), the release
//! pipeline (publishing artifacts) and the mirror's pull-through (reading
//! an upstream registry). Bottom up:
//!
//! - [`digest`]: `sha256:` digests of bytes, and telling one from a tag.
//! - [`reference`]: [`ImageRef`], `host[:port]/repo[:tag][@digest]`.
//! - [`manifest`]: a fetched [`Manifest`] and the media types a client accepts.
//! - [`auth`]: `WWW-Authenticate` challenges, the token request a bearer
//!   challenge asks for, and the token in its answer.
//! - [`session`]: [`Session`], the request layer: credentials, bearer tokens
//!   cached per registry and scope, and answering one `401` challenge. The
//!   mirror's upstream client sends through it.
//! - [`client`]: [`Client`], manifests, referrers, blobs, pushes and deletes
//!   by image reference, over a session.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use corral_registry::{Client, ImageRef};
//! let client = Client::new(false, Some(("user".into(), "password".into())));
//! let image = ImageRef::parse("registry.example/library/base:1")?;
//! if let Some(m) = client.manifest(&image, image.reference()).await? {
//!     println!("{} {}", m.digest, m.media_type);
//! }
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod digest;
pub mod manifest;
pub mod reference;
pub mod session;

pub use auth::{Challenge, Token};
pub use client::Client;
pub use digest::{is_sha256_digest, sha256_digest};
pub use manifest::{Manifest, MANIFEST_ACCEPT};
pub use reference::ImageRef;
pub use session::{BasicAuth, Credentials, Session, SessionError};
