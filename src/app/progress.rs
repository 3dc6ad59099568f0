//! A progress bar on stderr that appears only when stderr is a terminal and the work takes a moment.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work may run before a bar appears.
const DELAY: Duration = Duration::from_millis(700);

/// A hidden bar of `len` steps drawn with `template` (indicatif's syntax), shown after a moment on a terminal.
pub(super) fn delayed_bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    if std::io::stderr().is_terminal() {
        let shown = bar.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DELAY).await;
            if !shown.is_finished() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
    }
    bar
}
