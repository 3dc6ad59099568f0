//! The command line (SPEC section 2). kubectl passes no flags to a plugin, so the kubectl-style flags
//! are parsed here, and are global so they work before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::model::Granularity;

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

impl Cli {
    /// Whether the run covers several clusters (`--context` twice or more, or `--all-contexts`).
    pub fn is_fleet(&self) -> bool {
        self.kube.all_contexts || self.kube.context.len() > 1
    }

    /// The contexts of a fleet run, each with what `collect` should read there; `--cluster`, `--region` and
    /// `--profile` name one cluster, so a fleet run takes them from each context instead.
    pub fn fleet_options(&self, all_contexts: &[String]) -> crate::Result<Vec<(String, crate::collect::Options)>> {
        if self.aws.cluster.is_some() || self.aws.region.is_some() || self.aws.profile.is_some() {
            return Err(crate::Error::Usage(
                "--cluster, --region and --profile name one cluster; with several contexts each context's own are used"
                    .into(),
            ));
        }
        let contexts = if self.kube.all_contexts { all_contexts.to_vec() } else { self.kube.context.clone() };
        Ok(contexts
            .into_iter()
            .map(|c| {
                let mut options = self.collect_options();
                options.context = Some(c.clone());
                (c, options)
            })
            .collect())
    }

    /// What the flags ask `collect` to read.
    pub fn collect_options(&self) -> crate::collect::Options {
        let (k, a) = (&self.kube, &self.aws);
        crate::collect::Options {
            kubeconfig: k.kubeconfig.clone(),
            context: k.context.first().cloned(),
            namespace: k.namespace.clone(),
            all_namespaces: k.all_namespaces,
            selector: k.selector.clone(),
            cluster: a.cluster.clone(),
            region: a.region.clone(),
            profile: a.profile.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List service accounts and pods with the IAM role each runs as (the default).
    ///
    /// A configured row (IRSA annotation or Pod Identity association) lists every running pod of its
    /// service account; PODS shows current/total where some do not hold the role yet (they will at their
    /// next restart). A carried-only row is a role running pods still hold after their service account
    /// moved on. Completed pods hold nothing and are never counted.
    List,
    /// Show every namespace, service account, workload and pod bound to a role: configured bindings
    /// (including workloads that switch to it at their next restart) and pods that still carry it.
    WhoUses {
        /// A role name (matched in any path and account), a role ARN, or an ARN with its path.
        role: String,
    },
    /// Show the service permissions each bound role holds but its workloads do not use (IAM last accessed).
    Audit {
        /// A service last used more than this many days ago counts as unused.
        #[arg(long, default_value_t = 90, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=400))]
        unused_days: u32,
        /// Also draft, for each role with unused services, its permission policies without them (JSON for
        /// review; IAM is never changed).
        #[arg(long)]
        suggest_policy: bool,
        #[command(flatten)]
        iam: IamArgs,
        #[command(flatten)]
        usage: UsageArgs,
    },
    /// Audit, then annotate the workloads and service accounts whose roles hold unused services (and
    /// clear the annotations where that no longer holds). Only its own annotation keys are written.
    Annotate {
        /// A service last used more than this many days ago counts as unused.
        #[arg(long, default_value_t = 90, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=400))]
        unused_days: u32,
        /// Print the planned changes and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prefix of the annotation keys.
        #[arg(long, default_value = "iam-roles.io/", value_name = "PREFIX")]
        annotation_prefix: String,
        #[command(flatten)]
        iam: IamArgs,
        #[command(flatten)]
        usage: UsageArgs,
    },
    /// Check that each binding's wiring can work and is tight: roles exist, trust policies admit exactly
    /// their service accounts, the OIDC provider is registered, plus everything `list` finds.
    Doctor {
        /// Exit 1 when a problem of this severity or worse is found (for CI pipelines).
        #[arg(long, value_enum, value_name = "SEVERITY")]
        fail_on: Option<crate::model::Severity>,
        /// Role to assume to read roles in another account, as ACCOUNT=ROLE_ARN (repeatable).
        #[arg(long = "account-role", value_name = "ACCOUNT=ROLE_ARN", value_parser = parse_account_role)]
        account_roles: Vec<(String, String)>,
    },
    /// Write everything collected, with last-accessed data when AWS credentials allow, as a snapshot
    /// document (JSON, or YAML with -o yaml) for --snapshot.
    Snapshot {
        #[command(flatten)]
        iam: IamArgs,
        #[command(flatten)]
        usage: UsageArgs,
    },
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How the audit reads IAM last-accessed data.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "IAM")]
pub struct IamArgs {
    /// Report per service, or also per tracked action (S3, EC2, IAM, Lambda management actions).
    #[arg(long, value_enum, default_value_t = Granularity::Service)]
    pub granularity: Granularity,
    /// IAM calls in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Ignore cached last-accessed reports (they are reused for 4 hours; IAM's data lags about that much).
    #[arg(long)]
    pub refresh: bool,
    /// Where last-accessed reports are cached (default: the user's cache directory).
    #[arg(long, env = "IAM_ROLES_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Role to assume to read roles in another account, as ACCOUNT=ROLE_ARN (repeatable).
    #[arg(long = "account-role", value_name = "ACCOUNT=ROLE_ARN", value_parser = parse_account_role)]
    pub account_roles: Vec<(String, String)>,
    /// Give up on a role whose last-accessed job has not completed after this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub job_timeout: u64,
}

impl Default for IamArgs {
    /// The flags' defaults, for commands that read last-accessed data without offering the flags.
    fn default() -> Self {
        IamArgs {
            granularity: Granularity::Service,
            concurrency: 16,
            refresh: false,
            cache_dir: None,
            account_roles: Vec::new(),
            job_timeout: 300,
        }
    }
}

/// Observed usage: which workload called which action.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Observed usage")]
pub struct UsageArgs {
    /// Also read observed usage: `cloudtrail` reads the account trail's log files straight from S3 and
    /// attributes each call to the service account (IRSA) or pod (Pod Identity) that made it.
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub usage: Option<UsageSource>,
    /// How far back observed usage reaches: days (`30d`) or hours (`12h`), at most 400 days.
    #[arg(long, default_value = "30d", value_name = "DURATION", value_parser = parse_since)]
    pub since: jiff::SignedDuration,
    /// The trail to read, by name or ARN (default: the account's multi-region trail).
    #[arg(long, value_name = "NAME")]
    pub trail: Option<String>,
    /// With `--usage athena`: the CloudTrail table, as AWS documents it (partitioned by `timestamp`).
    #[arg(long, value_name = "DB.TABLE", required_if_eq("usage", "athena"))]
    pub athena_table: Option<String>,
    /// With `--usage athena`: the workgroup to run the query in.
    #[arg(long, value_name = "NAME")]
    pub athena_workgroup: Option<String>,
    /// With `--usage athena`: where results go (`s3://bucket/prefix/`), when the workgroup sets none.
    #[arg(long, value_name = "S3_URI")]
    pub athena_output: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageSource {
    /// The account trail's log files, read from S3.
    Cloudtrail,
    /// A query over the organisation's CloudTrail table in Athena.
    Athena,
}

fn parse_since(s: &str) -> Result<jiff::SignedDuration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 30d or 12h"))?;
    let hours = match unit {
        "d" => n * 24,
        "h" => n,
        _ => return Err(format!("{s:?} is not a duration like 30d or 12h")),
    };
    if !(1..=400 * 24).contains(&hours) {
        return Err(format!("{s:?}: between 1h and 400d"));
    }
    Ok(jiff::SignedDuration::from_hours(hours))
}

fn parse_account_role(s: &str) -> Result<(String, String), String> {
    let (account, role) = s.split_once('=').ok_or("expected ACCOUNT=ROLE_ARN")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{account:?} is not a 12-digit account id"));
    }
    role.parse::<crate::arn::RoleArn>().map_err(|e| e.to_string())?;
    Ok((account.to_string(), role.to_string()))
}

/// The kubectl flags: which cluster, which namespaces, which pods.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; repeat it to read several clusters in one run.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Vec<String>,
    /// Read every context of the kubeconfig, concurrently.
    #[arg(long, global = true, conflicts_with = "context")]
    pub all_contexts: bool,
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
#[command(next_help_heading = "AWS")]
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
    /// A configuration file (YAML): `accountRoles` maps account ids to the auditor role to assume there, so a
    /// CronJob needs no long list of `--account-role` flags (those win over the file).
    #[arg(long, global = true, env = "IAM_ROLES_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The configuration file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    /// Account id -> the role to assume there to read its roles.
    #[serde(default)]
    pub account_roles: std::collections::BTreeMap<String, String>,
}

impl ConfigFile {
    /// Reads and checks the file; a bad one is a usage error naming it.
    pub fn read(path: &std::path::Path) -> crate::Result<Self> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::config(format!("cannot read the configuration file {shown}: {e}")).because(e))?;
        let config: ConfigFile = serde_saphyr::from_str(&text)
            .map_err(|e| crate::Error::Usage(format!("{shown} is not a valid configuration file: {e}")))?;
        for (account, role) in &config.account_roles {
            parse_account_role(&format!("{account}={role}"))
                .map_err(|e| crate::Error::Usage(format!("{shown}: accountRoles: {e}")))?;
        }
        Ok(config)
    }
}

/// How to print, and where the data comes from.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
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
        let c = Cli::try_parse_from(["x", "audit", "--account-role", "444455556666=arn:aws:iam::444455556666:role/a"])
            .unwrap();
        assert!(
            matches!(c.command, Some(Command::Audit { ref iam, unused_days: 90, suggest_policy: false, .. }) if iam.account_roles.len() == 1)
        );
        assert!(
            Cli::try_parse_from(["x", "audit", "--account-role", "4444=arn:aws:iam::444455556666:role/a"]).is_err()
        );
        let b = Cli::try_parse_from(["x", "who-uses", "api", "-A"]).unwrap();
        assert!(b.kube.all_namespaces);
        assert!(Cli::try_parse_from(["x", "-n", "a", "-A"]).is_err());
        assert!(Cli::try_parse_from(["x", "-o", "csv"]).is_err());
    }

    #[test]
    fn since_takes_days_or_hours() {
        assert_eq!(parse_since("30d"), Ok(jiff::SignedDuration::from_hours(720)));
        assert_eq!(parse_since("12h"), Ok(jiff::SignedDuration::from_hours(12)));
        for bad in ["30", "d", "0d", "401d", "1w", "-1d", "1.5d"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
        let c =
            Cli::try_parse_from(["x", "audit", "--usage", "cloudtrail", "--since", "7d", "--trail", "org"]).unwrap();
        assert!(matches!(c.command, Some(Command::Audit { ref usage, .. })
            if usage.usage == Some(UsageSource::Cloudtrail) && usage.trail.as_deref() == Some("org")));
    }
}
