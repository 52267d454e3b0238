//! Logging setup: `tracing` with an `EnvFilter`, as text or JSON lines on stderr.

use tracing_subscriber::{EnvFilter, fmt};

use crate::cli::{CommonArgs, LogFormat};

/// Installs the global subscriber. A bad filter falls back to `warn` rather than failing.
pub fn init(args: &CommonArgs) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
