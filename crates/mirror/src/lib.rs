//! A registry mirror (distribution-spec v1.1): local repositories take
//! pushes, repositories under a configured prefix are mirrored lazily from an
//! upstream registry.
//!
//! The modules, in layers: routes call services and storage, services call
//! storage, and storage imports neither ([`app::App`] is the shared state
//! routes and services are handed).
//!
//! **HTTP routes** (axum handlers and what only they need)
//! - [`api`]: the router: `/v2/` endpoints, `/token`, `/metrics`,
//!   `/healthz`, `/readyz`, and the routes of the modules below.
//! - [`site`]: the website's pages (corral-site) over this mirror: the
//!   site's `Source` implemented on storage, trust, the OSTree directory's
//!   stream files and the disk images.
//! - [`catalog_page`]: the catalog of every tag (`/catalog`, `/catalog.json`).
//! - [`ostree`], [`disk_images`]: `/ostree/` and `/disk-images/`, published
//!   disk images listed with size, published checksum and GPG signature
//!   state.
//! - [`lookaside`]: GPG simple-signing signatures under `/sigstore/`.
//! - [`fleetlock`]: a FleetLock server, so a fleet's hosts reboot a
//!   configured number at a time.
//! - [`http`]: query strings, percent-encoding, byte ranges, bodies.
//!
//! **Services** (the registry's operations)
//! - [`app`]: the state every handler and service shares.
//! - [`manifest`]: media types, references, storing a manifest with its
//!   tag, links and referrer entry.
//! - [`serve`]: responses for a stored blob or manifest.
//! - [`upstream`]: the pull-through cache (single-flight, tee'd blob fetches).
//! - [`trust`]: trusted keys and cached signature checks for the catalog.
//! - [`auth`]: htpasswd basic auth and HMAC-signed bearer tokens.
//! - [`bucket_files`]: where `/ostree/` and `/disk-images/` come from: a
//!   local directory or a prefix of the S3 bucket; [`publish`] uploads
//!   them there in an order that never exposes a half-published state.
//! - [`gc`], [`fsck`]: storage maintenance.
//!
//! **Storage**
//! - [`storage`]: the [`storage::Storage`] seam (blobs, manifests, tags,
//!   links, upload sessions, signatures); above the byte store, what both
//!   backends do the same way (records, verify-then-commit, upload
//!   session rules); below it the filesystem backend and the S3 backend
//!   that replicas share.
//!
//! **Around them**
//! - [`cli`]: the `corral mirror serve|gc|fsck|publish` subcommands
//!   ([`cli_publish`] holds `publish`).
//! - [`server`]: binding, TLS and running.
//! - [`config`]: the TOML configuration.
//! - [`name`]: repository names, tags and digests, validated.
//! - [`metrics`]: request and cache counters for `/metrics`.
//! - [`error`]: distribution-spec error codes.

pub mod api;
pub mod app;
pub mod auth;
pub mod bucket_files;
pub mod catalog_page;
pub mod cli;
pub mod cli_publish;
pub mod config;
pub mod disk_images;
pub mod error;
pub mod fleetlock;
pub mod fsck;
pub mod gc;
pub mod http;
pub mod lookaside;
pub mod manifest;
pub mod metrics;
pub mod name;
pub mod ostree;
pub mod publish;
pub mod serve;
pub mod server;
pub mod site;
pub mod storage;
pub mod trust;
pub mod upstream;
mod zerocopy;
