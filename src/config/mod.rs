//! From `metallb.io` objects to the validated [`crate::core::config::Config`]: decoding with
//! field paths, per-object and cross-object validation (the logic the admission webhooks and
//! `metallb validate` share), and resolution of both API styles into one model.

pub mod advertisement;
pub mod bfd;
mod build;
pub mod cluster;
pub mod community;
pub mod error;
pub mod load;
pub mod peer;
pub mod pool;
pub(crate) mod problems;
pub mod resources;
pub mod scope;
pub mod secrets;
pub mod selector;
pub mod service;

pub use build::METALLB_RESOURCE_NAME;
pub(crate) use build::metallb_objects;
pub use error::ConfigError;
pub use load::{LoadOptions, Loaded, load, load_documents};
pub use resources::Resources;
