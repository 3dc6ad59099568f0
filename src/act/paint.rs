//! Colour, decided once per stream: `--color`, `NO_COLOR`, and whether the stream is a terminal.

use std::io::IsTerminal;

use owo_colors::OwoColorize;

use crate::cli::ColorChoice;

/// Paints text, or leaves it alone when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub enabled: bool,
}

impl Paint {
    /// Decides for a stream: `always`/`never` win; `auto` means a terminal and no `NO_COLOR`.
    pub fn decide(choice: ColorChoice, is_terminal: bool) -> Self {
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        Paint { enabled }
    }

    pub fn stdout(choice: ColorChoice) -> Self {
        Self::decide(choice, std::io::stdout().is_terminal())
    }

    pub fn stderr(choice: ColorChoice) -> Self {
        Self::decide(choice, std::io::stderr().is_terminal())
    }

    fn apply(&self, s: &str, f: impl Fn(&str) -> String) -> String {
        if self.enabled { f(s) } else { s.to_string() }
    }

    pub fn bad(&self, s: &str) -> String {
        self.apply(s, |s| s.red().to_string())
    }

    pub fn warn(&self, s: &str) -> String {
        self.apply(s, |s| s.yellow().to_string())
    }

    pub fn good(&self, s: &str) -> String {
        self.apply(s, |s| s.green().to_string())
    }

    pub fn dim(&self, s: &str) -> String {
        self.apply(s, |s| s.dimmed().to_string())
    }

    pub fn bold(&self, s: &str) -> String {
        self.apply(s, |s| s.bold().to_string())
    }
}
