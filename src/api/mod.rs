//! The `metallb.io` API: every custom resource kind an admin applies, as Rust types.
//!
//! Each kind lives in its own file with one module per served version. The types are the single
//! source of truth for the CRD YAML (`metallb crd`, checked in under `deploy/crds/`): field docs
//! become schema descriptions, and rules that need no other object are expressed in the schema
//! (OpenAPI ranges and patterns, CEL `x-kubernetes-validations`) so that a cluster rejects simple
//! mistakes even when no webhook is reachable. Cross-object rules live in [`crate::config`].

// kube's `printcolumn(name = .., type_ = .., json_path = ..)` repeats keys across columns by
// design; clippy's `duplicated_attributes` (1.95) mistakes each repeated `type_` for a duplicate.
#![allow(clippy::duplicated_attributes)]

pub mod address_pool;
pub mod bfd_profile;
pub mod bgp_advertisement;
pub mod bgp_peer;
pub mod community;
pub mod configuration_state;
pub mod conversion;
pub mod crd;
pub mod ip_address_pool;
pub mod l2_advertisement;
pub mod metallb;
pub mod service_bgp_status;

/// The API group of every MetalLB resource.
pub const GROUP: &str = "metallb.io";

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
