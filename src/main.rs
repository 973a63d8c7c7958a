//! polybrief's entry point: parse flags, set up progress and logging on stderr, run the
//! subcommand, and turn its result into the documented exit code.

use clap::Parser;

use polybrief::cli::{Cli, Command};
use polybrief::config::{Context, GlobalOptions};
use polybrief::error::ExitCode;
use polybrief::progress::log_safe;
use polybrief::progress::{OutputStyle, Reporter};

fn main() -> std::process::ExitCode {
    polybrief::allocator::keep_freed_memory_for_reuse();
    let cli = Cli::parse();
    let reporter = Reporter::new(OutputStyle::detect(cli.global.quiet));
    reporter.install_logger(match (cli.global.quiet, cli.global.verbose) {
        (true, _) => log::LevelFilter::Warn,
        (false, 0) => log::LevelFilter::Info,
        (false, 1) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    });
    let code = match run(cli, &reporter) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            err.exit_code()
        }
    };
    std::process::ExitCode::from(code as u8)
}

fn run(cli: Cli, reporter: &Reporter) -> polybrief::error::Result<ExitCode> {
    let ctx = Context::new(&GlobalOptions::from(&cli.global), reporter.clone())?;
    match cli.command {
        Command::Run(args) => polybrief::commands::run::run((*args).into(), &ctx),
        Command::Translate(args) => polybrief::commands::translate::run(args.into(), &ctx),
        Command::Summarize(args) => polybrief::commands::summarize::run(args.into(), &ctx),
        Command::Models(cmd) => polybrief::commands::models::run(cmd.into(), &ctx),
        Command::Cache(args) => {
            polybrief::commands::cache::run(&(&args).into(), &ctx.cache_dir)?;
            Ok(ExitCode::Success)
        }
    }
}

/// Prints the error and its chain of causes, each on its own line.
fn report_error(err: &polybrief::error::Error) {
    // Each part made safe on its own: a file name in a message cannot forge a line.
    let mut message = format!("error: {}", log_safe(&err.to_string()));
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // thiserror's `transparent` and `{0}` variants repeat their source's text.
        if !message.contains(&cause_text) {
            message.push_str(&format!("\n  caused by: {}", log_safe(&cause_text)));
        }
        source = cause.source();
    }
    eprintln!("{message}");
}
