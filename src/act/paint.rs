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

/// Text from the cluster, IAM or a snapshot, made safe for a terminal: control characters (escape
/// sequences, carriage returns, newlines) are shown as `\u{..}` escapes instead of acting, as kubectl
/// does since CVE-2021-25743. JSON and YAML need none of this: their encoders escape.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_neutralises_terminal_control() {
        assert_eq!(super::escape("plain"), "plain");
        assert_eq!(super::escape("a\u{1b}]0;owned\u{7}\nb"), "a\\u{1b}]0;owned\\u{7}\\u{a}b");
    }
}
