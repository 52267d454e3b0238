//! From `metallb.io` objects to the validated [`crate::core::config::Config`]: decoding with
//! field paths, per-object and cross-object validation (the logic the admission webhooks and
//! `metallb validate` share), and resolution of both API styles into one model.

pub mod error;
pub mod resources;
pub mod service;

pub use error::ConfigError;
pub use resources::Resources;
#[derive(Default)]
pub struct BuildOptions {
    pub namespace: Option<String>,
}
pub fn build(
    _r: &Resources,
    _o: &BuildOptions,
) -> Result<crate::core::config::Config, Vec<ConfigError>> {
    Ok(Default::default())
}
