//! metallb-rs: MetalLB and the MetalLB Operator in Rust.
//!
//! Module map:
//! - [`api`]: the `metallb.io` resource types and their CRDs.
//! - [`core`]: the pure domain (addresses, config model, allocator); no Kubernetes, no I/O.
//! - [`config`]: API objects → validated core config (the webhook logic).
//! - [`manifest`]: reading multi-document YAML from files, directories and stdin.

pub mod api;
pub mod config;
pub mod core;
pub mod manifest;
