//! Logging setup: MetalLB's log levels and, off a terminal, MetalLB's JSON lines.
//!
//! A JSON line has go-kit's keys as MetalLB writes them: `ts` (RFC 3339, UTC, fractional
//! seconds), `level` (`debug`, `info`, `warn`, `error`; `trace` only with `--log-level all`),
//! `msg`, `caller` (`file.rs:line`), plus the event's fields and those of the spans it is in
//! (`event`, `service`, `ip`, `pool`, ...). Keys are sorted, as go-kit's JSON logger sorts them.
//!
//! Where logs go: the long-running components (controller, speakers) log to stdout, as
//! upstream's go-kit logger does, so `kubectl logs` and log shippers see the same stream as with
//! MetalLB. The tools (`validate`, `plan`, `crd`, `apply`) log to stderr, because their stdout is
//! their result and may be piped into another program.

use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    EnvFilter,
    fmt::{
        self, FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{JsonFields, Writer},
        writer::BoxMakeWriter,
    },
    registry::LookupSpan,
};

use crate::{
    cli::{CommonArgs, LogFormat},
    core::frr::LogLevel,
};

/// Where log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output (the long-running components, like upstream).
    Stdout,
    /// Standard error (the tools, whose stdout is their result).
    Stderr,
}

/// Installs the global subscriber for `stream`.
pub fn init(args: &CommonArgs, stream: LogStream) {
    let filter = EnvFilter::new(
        args.log_filter
            .as_deref()
            .unwrap_or(filter_directives(args.log_level)),
    );
    let terminal = match stream {
        LogStream::Stdout => std::io::stdout().is_terminal(),
        LogStream::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match args.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let writer = match stream {
        LogStream::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogStream::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    // No colour codes unless a terminal shows them.
    let builder = fmt::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer);
    // `try_init` fails only when a subscriber is already installed; the first one stays.
    let _ = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The `EnvFilter` directives for a MetalLB log level. `all` is everything, other crates'
/// trace included; `debug` and `info` apply to metallb itself and keep other crates (kube,
/// hyper, rustls) one step quieter, as upstream's level does not reach client-go's klog.
pub fn filter_directives(level: LogLevel) -> &'static str {
    match level {
        LogLevel::All => "trace",
        LogLevel::Debug => "info,metallb=debug",
        LogLevel::Info => "warn,metallb=info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::None => "off",
    }
}

/// One event as one JSON object with MetalLB's keys.
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        // Span fields first, outermost span first, so that inner spans and the event's own
        // fields win when a name repeats. JsonFields stores each span's fields as a JSON object.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(map);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        line.insert("ts".into(), jiff::Timestamp::now().to_string().into());
        line.insert("level".into(), level_name(*metadata.level()).into());
        line.insert(
            "caller".into(),
            caller(metadata.file(), metadata.line()).into(),
        );
        line.entry("msg").or_insert_with(|| "".into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// MetalLB's lower-case level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `controller/mod.rs:661` for this crate's `src/controller/mod.rs`; another crate's file keeps
/// its crate directory (`kube-runtime-3.0.0/src/watcher.rs:120`) so that it stays recognisable.
fn caller(file: Option<&str>, line: Option<u32>) -> String {
    let file = file.unwrap_or("?");
    let short = match file.strip_prefix("src/") {
        Some(own) => own,
        None => file
            .rfind("/src/")
            .and_then(|src| file[..src].rfind('/').map(|start| &file[start + 1..]))
            .unwrap_or(file),
    };
    match line {
        Some(line) => format!("{short}:{line}"),
        None => short.to_string(),
    }
}

/// Records an event's fields into a JSON object; the message becomes `msg`.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.0.insert(key.to_string(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.insert(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_is_short() {
        assert_eq!(
            caller(Some("src/controller/mod.rs"), Some(661)),
            "controller/mod.rs:661"
        );
        assert_eq!(
            caller(
                Some(
                    "/root/.cargo/registry/src/index.crates.io-1949/kube-runtime-3.0.0/src/watcher.rs"
                ),
                Some(12)
            ),
            "kube-runtime-3.0.0/src/watcher.rs:12"
        );
        assert_eq!(caller(None, None), "?");
    }

    #[test]
    fn every_level_has_directives_that_parse() {
        for level in [
            LogLevel::All,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::None,
        ] {
            EnvFilter::builder()
                .parse(filter_directives(level))
                .unwrap_or_else(|e| panic!("{level:?}: {e}"));
        }
    }
}
