//! Subcommand handlers: the CLI edge, where errors become exit codes and messages.

mod apply;
mod controller;
mod must_gather;
mod operator;
mod plan;
mod speaker;
mod status;
mod validate;
mod webhook;

use std::process::ExitCode;

use crate::{
    cli::{Cli, Command},
    config::{self, ConfigError, Resources},
    manifest,
};

/// Exit code for "the input is invalid".
pub const EXIT_INVALID: u8 = 1;
/// Exit code for "the input could not be read or parsed".
pub const EXIT_UNREADABLE: u8 = 2;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crd => {
            print!("{}", crate::api::crd::to_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Controller(args) => controller::run(args),
        Command::Apply(args) => apply::run(&args),
        Command::Speaker(args) => speaker::run(&args),
        Command::Webhook(args) => webhook::run(&args),
        Command::Status(args) => status::run(&args),
        Command::MustGather(args) => must_gather::run(&args),
        Command::Operator(args) => operator::run(&args),
    }
}

/// The multi-threaded runtime the long-running components run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// The API client for the `--kubeconfig` / `--context` flags every cluster command takes.
pub(crate) async fn kube_client(
    kube: &crate::cli::KubeArgs,
) -> Result<kube::Client, crate::k8s::ClientError> {
    crate::k8s::client(kube.kubeconfig.as_deref(), kube.context.as_deref()).await
}

/// Manifests read, decoded and loaded ([`config::load_documents`]) with the number of files
/// read, or the exit code that reading or parsing ended with (the message is already printed).
pub(crate) fn load_manifests(
    paths: &[std::path::PathBuf],
    options: &config::LoadOptions,
) -> Result<(Resources, config::Loaded, usize), ExitCode> {
    let sources = manifest::read_paths(paths).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_UNREADABLE)
    })?;
    let mut docs = Vec::new();
    for (file, text) in &sources {
        let parsed = manifest::parse(file, text).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNREADABLE)
        })?;
        tracing::debug!(file = %file, documents = parsed.len(), "manifest read");
        for doc in &parsed {
            tracing::trace!(
                file = %doc.file,
                line = doc.line,
                kind = doc.kind(),
                name = doc.name(),
                "document read"
            );
        }
        docs.extend(parsed);
    }
    let (resources, loaded) = config::load_documents(&docs, options);
    Ok((resources, loaded, sources.len()))
}

/// Prints every problem on stdout, one line each, and a count on stderr; returns the exit code
/// for invalid input.
pub(crate) fn report_invalid(problems: &[ConfigError], what_happens: &str) -> ExitCode {
    for problem in problems {
        println!("{problem}");
    }
    eprintln!(
        "invalid configuration: {} problem(s){what_happens}",
        problems.len()
    );
    ExitCode::from(EXIT_INVALID)
}

/// Environment variable that overrides FRR's log level with any FRR level, as upstream's
/// speaker reads it.
pub(crate) const FRR_LOGGING_LEVEL: &str = "FRR_LOGGING_LEVEL";

/// FRR's log level: `FRR_LOGGING_LEVEL` when set to an FRR level (e.g. `alerts`), else
/// MetalLB's `--frr-log-level` mapped as upstream does.
pub(crate) fn frr_log_level(level: crate::core::frr::LogLevel) -> crate::core::frr::FrrLogLevel {
    match std::env::var(FRR_LOGGING_LEVEL) {
        Ok(text) if !text.is_empty() => text.parse().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "{FRR_LOGGING_LEVEL} ignored");
            level.into()
        }),
        _ => level.into(),
    }
}
