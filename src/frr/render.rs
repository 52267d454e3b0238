//! [`FrrConfig`] → `frr.conf` text, through the askama template `templates/frr.conf.j2`.
//!
//! The output is FRR 8.4.4's canonical `show running-config` form (frr/CANONICAL.md), so
//! `frr-reload.py --test` on an applied file prints nothing and a reload of an unchanged model is
//! a no-op. The golden tests (`tests/golden_frr.rs`) pin the text and have FRR parse every file.

use askama::Template;

use crate::core::frr::FrrConfig;

/// Rendering failed (only possible through a template bug: every value is plain data).
#[derive(Debug, thiserror::Error)]
#[error("failed to render frr.conf")]
pub struct RenderError(#[source] askama::Error);

/// The template; `escape = "none"`: this is not HTML, and names such as `local-AS` or `a&b`
/// must come out as written.
#[derive(Template)]
#[template(path = "frr.conf.j2", escape = "none")]
struct FrrConf<'a> {
    c: &'a FrrConfig,
}

/// Renders a whole `frr.conf`.
pub fn render(config: &FrrConfig) -> Result<String, RenderError> {
    let mut text = FrrConf { c: config }.render().map_err(RenderError)?;
    // askama drops the template's final newline (as Jinja does); FRR files end with one.
    text.push('\n');
    Ok(text)
}
