//! `kubectl iam-roles`: which pods run as which IAM role on Amazon EKS.
//!
//! The program is a pipeline: [`collect`] (Kubernetes objects and Pod Identity associations, live or from
//! a snapshot) -> [`resolve`] (bindings, effective mechanism, problems) -> [`act`] (render).

pub mod act;
pub mod app;
pub mod arn;
pub mod audit;
pub mod cli;
pub mod collect;
pub mod doctor;
pub mod model;
pub mod policy;
pub mod resolve;
pub mod selector;

/// The crate-wide error: every message says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Kubeconfig, cluster or AWS settings that cannot work.
    #[error("{0}")]
    Config(String),
    /// A Kubernetes API request failed.
    #[error("{0}")]
    Kube(String),
    /// An AWS API request failed in a way that makes the result wrong (not a per-item failure).
    #[error("{0}")]
    Aws(String),
    /// A snapshot file cannot be read or is not a snapshot.
    #[error("{0}")]
    Snapshot(String),
    /// `doctor --fail-on` found problems at that level.
    #[error("{0}")]
    Findings(String),
    /// `annotate` left objects alone on incomplete evidence, or could not write some (exit 1 for CronJobs).
    #[error("{0}")]
    Incomplete(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The exit code of SPEC section 2: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Installs the one rustls crypto provider (aws-lc-rs) that kube and the AWS SDK share. Without it,
/// a build that links more than one provider fails at the first TLS handshake.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
