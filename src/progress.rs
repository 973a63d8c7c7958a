//! Progress and log output, always on stderr so that stdout carries only the brief or JSON.
//!
//! On a terminal, progress is drawn as indicatif bars (downloads in bytes with rate, stages and
//! articles with ETA). When stderr is not a terminal (cron, systemd, CI) bars would be noise, so
//! the same events become plain timestamped log lines. Log records from the `log` crate are
//! printed through the bars' `MultiProgress` so they never tear a bar in half.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStyle {
    /// Animated bars on a terminal.
    Bars,
    /// Timestamped lines, for logs.
    LogLines,
    /// Nothing but warnings and errors (`-q`).
    Quiet,
}

impl OutputStyle {
    /// Bars when stderr is a terminal, log lines otherwise.
    pub fn detect(quiet: bool) -> OutputStyle {
        if quiet {
            OutputStyle::Quiet
        } else if std::io::stderr().is_terminal() {
            OutputStyle::Bars
        } else {
            OutputStyle::LogLines
        }
    }
}

/// Hands out progress tasks; cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    multi: MultiProgress,
    style: OutputStyle,
}

impl Reporter {
    pub fn new(style: OutputStyle) -> Reporter {
        let target = match style {
            OutputStyle::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        Reporter {
            multi: MultiProgress::with_draw_target(target),
            style,
        }
    }

    /// A reporter that shows nothing, for tests and library use.
    pub fn hidden() -> Reporter {
        Reporter::new(OutputStyle::Quiet)
    }

    pub fn style(&self) -> OutputStyle {
        self.style
    }

    /// A transfer measured in bytes: shows bytes, rate and ETA.
    pub fn bytes(&self, label: &str, total: u64) -> Task {
        let style = ProgressStyle::with_template(
            "{msg:32!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> ");
        self.task(label, total, style, Unit::Bytes)
    }

    /// Work measured in items (articles, sentences, stages): shows count and ETA.
    pub fn items(&self, label: &str, total: u64) -> Task {
        let style = ProgressStyle::with_template(
            "{msg:32!} [{bar:30}] {pos:>6}/{len:6} {per_sec:>10} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> ");
        self.task(label, total, style, Unit::Items)
    }

    fn task(&self, label: &str, total: u64, style: ProgressStyle, unit: Unit) -> Task {
        let bar = self.multi.add(ProgressBar::new(total).with_style(style));
        bar.set_message(label.to_string());
        if self.style == OutputStyle::Bars {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let task = Task {
            bar,
            label: label.to_string(),
            lines: self.style == OutputStyle::LogLines,
            unit,
            last_line: Arc::new(Mutex::new((Instant::now(), 0))),
        };
        task.line(&format!("started ({})", unit.format(total)));
        task
    }

    /// Prints a line on stderr without tearing any bar.
    pub fn println(&self, line: &str) {
        let stamped = format!("{} {line}", timestamp());
        match self.style {
            OutputStyle::Bars => self.multi.suspend(|| eprintln!("{line}")),
            _ => {
                let _ = writeln!(std::io::stderr(), "{stamped}");
            }
        }
    }

    /// Installs this reporter as the `log` crate's logger at the given level.
    pub fn install_logger(&self, level: log::LevelFilter) {
        let logger = StderrLogger {
            reporter: self.clone(),
            level,
        };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(level);
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Unit {
    Bytes,
    Items,
}

impl Unit {
    fn format(self, n: u64) -> String {
        match self {
            Unit::Bytes => indicatif::HumanBytes(n).to_string(),
            Unit::Items => n.to_string(),
        }
    }
}

/// One bar (or its log-line equivalent).
#[derive(Clone)]
pub struct Task {
    bar: ProgressBar,
    label: String,
    lines: bool,
    unit: Unit,
    /// When the last log line was written and at which position.
    last_line: Arc<Mutex<(Instant, u64)>>,
}

impl Task {
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.maybe_line();
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.maybe_line();
    }

    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Marks the task done and leaves a final line.
    pub fn finish(&self, note: &str) {
        self.bar.finish_and_clear();
        let pos = self.bar.position();
        let elapsed = self.bar.elapsed();
        self.line(&format!(
            "done: {} in {:.1}s{}",
            self.unit.format(pos),
            elapsed.as_secs_f64(),
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            }
        ));
    }

    /// Abandons the task (on error), leaving the bar where it stopped.
    pub fn fail(&self, why: &str) {
        self.bar.abandon();
        self.line(&format!("failed: {why}"));
    }

    fn line(&self, what: &str) {
        if self.lines {
            let _ = writeln!(std::io::stderr(), "{} {}: {what}", timestamp(), self.label);
        }
    }

    /// In log-line mode, a line at most every 10 seconds, so cron logs show a run is alive.
    fn maybe_line(&self) {
        if !self.lines {
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        let pos = self.bar.position();
        if last.0.elapsed() >= Duration::from_secs(10) && pos != last.1 {
            *last = (Instant::now(), pos);
            let total = self.bar.length().unwrap_or(0);
            drop(last);
            self.line(&format!(
                "{}/{}",
                self.unit.format(pos),
                self.unit.format(total)
            ));
        }
    }
}

fn timestamp() -> String {
    chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

struct StderrLogger {
    reporter: Reporter,
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with("polybrief")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = match record.level() {
            log::Level::Error => format!("error: {}", record.args()),
            log::Level::Warn => format!("warning: {}", record.args()),
            log::Level::Info => format!("{}", record.args()),
            level => format!("{}: {}", level.as_str().to_lowercase(), record.args()),
        };
        self.reporter.println(&line);
    }

    fn flush(&self) {}
}
