//! metallb-rs: MetalLB and the MetalLB Operator in Rust.
//!
//! Module map:
//! - [`api`]: the `metallb.io` resource types and their CRDs.
//! - [`core`]: the pure domain (addresses, config model, allocator); no Kubernetes, no I/O.
//! - [`config`]: API objects → validated core config (the webhook logic), Services → allocator
//!   input.
//! - [`l2`]: the layer 2 speaker (ARP/NDP responder, announcer, membership).
//! - [`manifest`]: reading multi-document YAML from files, directories and stdin.
//! - [`plan`]: the dry run of the controller's allocation.
//! - [`controller`]: `metallb controller`, allocation through the Kubernetes API.
//! - [`speaker`]: the speaker's Kubernetes API source.
//! - [`k8s`]: client, Lease leader election and the status writer shared by the components.
//! - [`frr`]: FRR: rendering frr.conf, applying it (the apply loop), vtysh status.
//! - [`webhook`]: `metallb webhook`, admission and BGPPeer conversion over HTTPS.
//! - [`metrics`]: the metrics and health server and every component's metrics.
//! - [`operator`]: `metallb operator`, deploying MetalLB from the `MetalLB` resource.
//! - [`cli`], [`cmd`], [`telemetry`]: the command-line edge.

pub mod api;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod controller;
pub mod core;
pub mod frr;
pub mod heap;
pub mod k8s;
pub mod l2;
pub mod manifest;
pub mod metrics;
pub mod must_gather;
pub mod operator;
pub mod plan;
pub mod speaker;
pub mod status;
pub mod telemetry;
pub mod webhook;
