//! The generated `metallb.status.v1` messages, servers and clients (see `proto/` and `build.rs`).

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    rust_2018_idioms
)]

tonic::include_proto!("metallb.status.v1");

/// The encoded descriptor set of `proto/`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("metallb_status_v1_descriptor");
