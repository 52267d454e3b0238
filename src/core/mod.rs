//! The pure domain of metallb-rs: address ranges, the configuration model, label selectors, the
//! service model, the node and endpoint facts both protocols announce by, the IP allocator, the
//! BGP announcement model, the layer 2 election and the FRR configuration model.
//!
//! Nothing in here talks to Kubernetes, FRR, the network or the clock: `core` imports neither
//! `kube` nor `tonic` nor tokio I/O (CI greps for it). Everything is deterministic, which is what
//! lets `metallb plan` show exactly what the controller will do.

pub mod address;
pub mod allocator;
pub mod bgp;
pub mod community;
pub mod config;
pub mod frr;
pub mod l2;
pub mod node;
pub mod selector;
pub mod service;
pub mod status;

pub use address::{Family, IpRange};
