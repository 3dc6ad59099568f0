//! The command line (SPEC section 2). kubectl passes no flags to a plugin, so the kubectl-style flags
//! are parsed here, and are global so they work before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Map Amazon EKS pods and service accounts to the IAM roles they run as (IRSA and EKS Pod Identity).
///
/// With no subcommand, lists the bindings in scope (same as `list`).
#[derive(Debug, Parser)]
#[command(name = "kubectl-iam_roles", bin_name = "kubectl iam-roles", version, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List service accounts and pods with the IAM role each runs as (the default).
    List,
    /// Show every namespace, service account, workload and pod bound to a role.
    WhoUses {
        /// A role name (matched in any path and account), a role ARN, or an ARN with its path.
        role: String,
    },
    /// Write everything collected as a snapshot document (JSON, or YAML with -o yaml), for --snapshot.
    Snapshot,
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The kubectl flags: which cluster, which namespaces, which pods.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace scope (default: the context's namespace).
    #[arg(short, long, global = true, value_name = "NS", conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Look in all namespaces.
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Label selector on pods (e.g. app=api,tier!=db).
    #[arg(short = 'l', long, global = true, value_name = "SELECTOR")]
    pub selector: Option<String>,
}

/// The AWS flags: which EKS cluster, region and credentials.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// EKS cluster name (default: inferred from an EKS kubeconfig context).
    #[arg(long, global = true, env = "IAM_ROLES_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// AWS region (default: inferred from the context, then the AWS configuration).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS named profile (default: the context's AWS_PROFILE, then the AWS configuration).
    #[arg(long, global = true, value_name = "PROFILE")]
    pub profile: Option<String>,
}

/// How to print, and where the data comes from.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// When to use colour (auto: on a terminal, unless NO_COLOR is set).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Read everything from a snapshot file instead of the live APIs.
    #[arg(long, global = true, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_work_before_and_after_the_subcommand() {
        let a = Cli::try_parse_from(["x", "-n", "web", "who-uses", "api", "-o", "json"]).unwrap();
        assert_eq!(a.kube.namespace.as_deref(), Some("web"));
        assert_eq!(a.output.output, Format::Json);
        assert!(matches!(a.command, Some(Command::WhoUses { ref role }) if role == "api"));
        let b = Cli::try_parse_from(["x", "who-uses", "api", "-A"]).unwrap();
        assert!(b.kube.all_namespaces);
        assert!(Cli::try_parse_from(["x", "-n", "a", "-A"]).is_err());
        assert!(Cli::try_parse_from(["x", "-o", "csv"]).is_err());
    }
}
