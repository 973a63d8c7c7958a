//! TEMPORARY entry point on the h-hub branch, so `polybrief models ...` can be run and tested
//! before the lead's cli.rs/main.rs exist. The lead's version replaces this file at merge; it
//! only has to build a `ModelsContext` and call `commands::models::run` the same way.

use std::path::PathBuf;

use clap::Parser;

use polybrief::commands::models::{self, ModelsCommand, ModelsContext};
use polybrief::error::{Error, ExitCode};
use polybrief::models::catalog::Catalog;
use polybrief::models::hub::{HubError, HubSettings};
use polybrief::progress::{OutputStyle, Reporter};

#[derive(Parser)]
#[command(name = "polybrief", version, about)]
struct Cli {
    /// Never use the network: only the hub cache and local model directories.
    #[arg(long, global = true)]
    offline: bool,
    /// A model catalog file laid over the built-in one (same format as models/catalog.toml).
    #[arg(long, global = true, value_name = "FILE")]
    models: Option<PathBuf>,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List, fetch or verify the models polybrief runs.
    #[command(subcommand)]
    Models(ModelsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let reporter = Reporter::new(OutputStyle::detect(cli.quiet));
    reporter.install_logger(if cli.quiet { log::LevelFilter::Warn } else { log::LevelFilter::Info });
    let code = match run(cli, &reporter) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            e.exit_code()
        }
    };
    std::process::ExitCode::from(code as u8)
}

fn run(cli: Cli, reporter: &Reporter) -> Result<ExitCode, Error> {
    let mut catalog = Catalog::builtin().map_err(HubError::from)?;
    if let Some(path) = &cli.models {
        catalog = catalog.with_overrides(path).map_err(HubError::from)?;
    }
    let settings = HubSettings::from_env(cli.offline);
    match cli.command {
        Command::Models(cmd) => {
            models::run(cmd, &ModelsContext { catalog, settings, reporter: reporter.clone() })
        }
    }
}
