use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = buildopt::cli::Cli::parse();
    ExitCode::from(buildopt::commands::run(
        cli,
        buildopt::env::Env::from_process(),
    ))
}
