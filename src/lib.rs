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
pub mod usage;

/// The failure underneath an [`Error`], kept so the message can say what failed below it.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The crate-wide error: every message says what failed and what to do; the failure it came from (a
/// kubeconfig parse error, an API error, an I/O error) stays reachable through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Kubeconfig, cluster or AWS settings that cannot work.
    #[error("{message}")]
    Config {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// A Kubernetes API request failed.
    #[error("{message}")]
    Kube {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// An AWS API request failed in a way that makes the result wrong (not a per-item failure).
    #[error("{message}")]
    Aws {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// A snapshot file cannot be read or is not a snapshot.
    #[error("{message}")]
    Snapshot {
        message: String,
        #[source]
        source: Option<Source>,
    },
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
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config { message: message.into(), source: None }
    }

    pub fn kube(message: impl Into<String>) -> Self {
        Error::Kube { message: message.into(), source: None }
    }

    pub fn aws(message: impl Into<String>) -> Self {
        Error::Aws { message: message.into(), source: None }
    }

    pub fn snapshot(message: impl Into<String>) -> Self {
        Error::Snapshot { message: message.into(), source: None }
    }

    /// The same error, with the failure underneath it.
    pub fn because(mut self, cause: impl Into<Source>) -> Self {
        if let Error::Config { source, .. }
        | Error::Kube { source, .. }
        | Error::Aws { source, .. }
        | Error::Snapshot { source, .. } = &mut self
        {
            *source = Some(cause.into());
        }
        self
    }

    /// The exit code of SPEC section 2: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// An error and its sources, joined with `: `, skipping a cause a message before it already holds.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !msg.is_empty() && !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Installs the one rustls crypto provider (aws-lc-rs) that kube and the AWS SDK share. Without it,
/// a build that links more than one provider fails at the first TLS handshake.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Connect(#[source] Refused);

    #[test]
    fn errors_keep_what_failed_underneath() {
        let e = Error::kube("cannot reach the API server: client error (Connect)").because(Connect(Refused));
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<Connect>().is_some());
        // The chain names the deeper cause once, and not the one the message already holds.
        assert_eq!(causes(&e), "cannot reach the API server: client error (Connect): connection refused");
        assert!(std::error::Error::source(&Error::Usage("x".into())).is_none());
        assert!(std::error::Error::source(&Error::config("x")).is_none());
    }
}
