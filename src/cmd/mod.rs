//! Subcommand handlers: the CLI edge, where errors become exit codes and messages.

mod apply;
mod controller;
mod must_gather;
mod plan;
mod speaker;
mod speaker_l2;
mod status;
mod validate;

use std::process::ExitCode;

use crate::{
    cli::{Cli, Command},
    config::{ConfigError, Resources},
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
        Command::SpeakerL2(args) => speaker_l2::run(&args),
        Command::Speaker(args) => speaker::run(&args),
        Command::Status(args) => status::run(&args),
        Command::MustGather(args) => must_gather::run(&args),
    }
}

/// Manifests read and decoded, or the exit code that reading or parsing ended with (the message
/// is already printed).
pub(crate) fn load(
    paths: &[std::path::PathBuf],
) -> Result<(Resources, Vec<ConfigError>, usize), ExitCode> {
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
    let (resources, errors) = Resources::from_documents(&docs);
    Ok((resources, errors, sources.len()))
}

/// Drops repeated problems, keeping the first of each and the order they were found in (decode
/// problems first, then the config build's, which are already sorted by object and field).
pub(crate) fn dedup(errors: &mut Vec<ConfigError>) {
    let mut seen = std::collections::BTreeSet::new();
    errors.retain(|e| seen.insert(e.clone()));
}
