//! The gRPC status API (`proto/metallb/status/v1`): servers translating live state to proto,
//! and the client behind `metallb status`.

pub mod auth;
pub mod client;
pub mod controller;
pub mod discover;
pub mod proto;
pub mod server;
pub mod speaker;

pub use server::{DEFAULT_CONTROLLER_ADDR, DEFAULT_SPEAKER_ADDR, Listener, ServeError};
