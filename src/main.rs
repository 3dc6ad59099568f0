use std::process::ExitCode;

use clap::Parser;
use kubectl_iam_roles::act::paint::Paint;
use kubectl_iam_roles::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("IAM_ROLES_LOG"))
        .with_writer(std::io::stderr)
        // Log lines follow the one colour decision for stderr: never escape codes in a redirected log.
        .with_ansi(Paint::stderr(cli.output.color).enabled)
        .init();
    kubectl_iam_roles::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kubectl_iam_roles::app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(kubectl_iam_roles::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // The message, then any failure underneath it that the message does not already name.
            eprintln!("error: {}", kubectl_iam_roles::act::paint::escape(&kubectl_iam_roles::causes(&e)));
            ExitCode::from(e.exit_code())
        }
    }
}
