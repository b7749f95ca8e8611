//! Progress bars and messages: shown on a terminal, hidden when stdout is not one or with `--quiet`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    quiet: bool,
    bars: bool,
}

impl Reporter {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bars: !quiet && std::io::stdout().is_terminal(),
        }
    }

    /// A reporter that prints nothing.
    pub fn silent() -> Self {
        Self::new(true)
    }

    /// A progress bar over `len` items of `unit`.
    pub fn bar(&self, len: u64, prefix: &str, unit: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        let template = format!(
            "{{prefix}} [{{bar:40.cyan/blue}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(prefix.to_string());
        bar
    }

    /// A line of information on stdout, unless quiet.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            use std::io::Write;
            // A closed pipe must not turn a finished run into a panic.
            let _ = writeln!(std::io::stdout(), "{}", msg.as_ref());
        }
    }

    /// A warning on stderr, always.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", msg.as_ref());
    }
}
