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

/// Upstream's ConfigMap of raw FRR configuration, in MetalLB's namespace.
pub const EXTRAS_CONFIG_MAP: &str = "bgpextras";
/// Its key.
pub const EXTRAS_KEY: &str = "extras";

/// The rendered `frr.conf` with the `bgpextras` text appended, as upstream's template ends with
/// it: after everything MetalLB renders, each on whole lines. Empty extras change nothing.
pub fn with_extras(mut rendered: String, extras: &str) -> String {
    let extras = extras.trim_end();
    if extras.trim().is_empty() {
        return rendered;
    }
    if !rendered.is_empty() && !rendered.ends_with('\n') {
        rendered.push('\n');
    }
    rendered.push_str(extras);
    rendered.push('\n');
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_come_after_the_rendered_config_on_their_own_lines() {
        let rendered = "frr version 8.4.4\n!\nexit\n!\n".to_string();
        let extras = "ip prefix-list extra seq 5 permit 10.0.0.0/8\nroute-map extra permit 10\n\n";
        let text = with_extras(rendered.clone(), extras);
        assert!(text.starts_with(&rendered), "{text}");
        assert_eq!(
            &text[rendered.len()..],
            "ip prefix-list extra seq 5 permit 10.0.0.0/8\nroute-map extra permit 10\n"
        );
        // A render without its final newline still leaves the extras on their own line.
        assert_eq!(with_extras("exit".into(), "a b"), "exit\na b\n");
    }

    #[test]
    fn blank_extras_leave_the_render_as_it_is() {
        let rendered = "frr version 8.4.4\n!\n".to_string();
        assert_eq!(with_extras(rendered.clone(), ""), rendered);
        assert_eq!(with_extras(rendered.clone(), " \n\n"), rendered);
    }
}
