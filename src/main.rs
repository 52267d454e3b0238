//! The `metallb` binary: parse the command line, set up logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use metallb::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    metallb::telemetry::init(&cli.common, cli.command.log_stream());
    match metallb::cmd::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
