//! The client side of the OCI distribution API, shared by `corral sign`
//! (pushing signatures, reading manifests and referrers) and the mirror's
//! pull-through (reading an upstream registry).
//!
//! - [`auth`]: `WWW-Authenticate` challenges, the token request a bearer
//!   challenge asks for, and the token in its answer.
//!
//! ```
//! use corral_registry::auth::Challenge;
//! let c = Challenge::parse(r#"Bearer realm="https://auth.example/token",service="registry.example""#).unwrap();
//! assert_eq!(c.scheme, "bearer");
//! assert_eq!(c.realm(), Some("https://auth.example/token"));
//! ```

pub mod auth;

pub use auth::{Challenge, Token};
