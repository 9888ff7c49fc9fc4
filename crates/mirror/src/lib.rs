//! A registry mirror (distribution-spec v1.1): local repositories take
//! pushes, repositories under a configured prefix are mirrored lazily from an
//! upstream registry.
//!
//! - [`cli`]: the `corral mirror serve|gc|fsck|publish` subcommands
//!   ([`cli_publish`] holds `publish`).
//! - [`config`]: the TOML configuration.
//! - [`name`]: repository names, tags and digests, validated.
//! - [`storage`]: the [`storage::Storage`] trait (blobs, manifests, tags,
//!   links, upload sessions, signatures) with the filesystem backend and the
//!   S3 backend that replicas share.
//! - [`api`]: the axum router: `/v2/` endpoints, `/token`, `/metrics`,
//!   `/healthz`, the website, the catalog of every tag (`/catalog` and
//!   `/catalog.json`), `/ostree/` and `/disk-images/`.
//! - [`site`]: the website's pages (corral-site) over this mirror: the
//!   site's `Source` implemented on storage, trust, the OSTree directory's
//!   stream files and the disk images.
//! - [`disk_images`]: published disk images served as files, listed with
//!   size, published checksum and GPG signature state.
//! - [`bucket_files`]: where `/ostree/` and `/disk-images/` come from: a
//!   local directory or a prefix of the S3 bucket; [`publish`] uploads
//!   them there in an order that never exposes a half-published state.
//! - [`auth`]: htpasswd basic auth and HMAC-signed bearer tokens.
//! - [`upstream`]: the pull-through cache (single-flight, tee'd blob fetches).
//! - [`lookaside`]: GPG simple-signing signatures under `/sigstore/`.
//! - [`trust`]: trusted keys and cached signature checks for the catalog.
//! - [`fleetlock`]: a FleetLock server, so a fleet's hosts reboot a
//!   configured number at a time.
//! - [`gc`], [`fsck`]: storage maintenance.
//! - [`server`]: binding, TLS and running.
//! - [`error`]: distribution-spec error codes.

pub mod api;
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
pub mod lookaside;
pub mod metrics;
pub mod name;
pub mod ostree;
pub mod publish;
pub mod server;
pub mod site;
pub mod storage;
pub mod trust;
pub mod upstream;
