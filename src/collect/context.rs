//! Which cluster: the kube client from `--kubeconfig`/`--context` (or in-cluster), and the EKS cluster
//! name, region, account and AWS profile inferred from an EKS kubeconfig context.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo};

use super::Options;
use crate::arn::Arn;
use crate::{Error, Result};

/// What a kubeconfig context tells about the EKS cluster behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHint {
    pub name: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    /// `AWS_PROFILE` from the exec plugin's env (as `aws eks update-kubeconfig --profile` writes it).
    pub profile: Option<String>,
}

/// A kube config ready to connect, and what the context says about the cluster.
pub struct KubeTarget {
    pub config: kube::Config,
    pub hint: ClusterHint,
    /// Where the configuration came from, for error messages.
    pub source: String,
}

/// Loads the kube configuration the way kubectl does: `--kubeconfig`, else `$KUBECONFIG`, else
/// `~/.kube/config`, else the in-cluster service account.
pub async fn load(args: &Options) -> Result<KubeTarget> {
    let from_file = match &args.kubeconfig {
        Some(path) => Some((
            Kubeconfig::read_from(path).map_err(|e| bad_kubeconfig(&path.display().to_string(), e))?,
            path.display().to_string(),
        )),
        None => default_kubeconfig()?,
    };
    let Some((kubeconfig, source)) = from_file else {
        let config = kube::Config::incluster().map(bounded).map_err(|e| {
            Error::config(format!(
                "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster ({e}); pass --kubeconfig, \
                 or --snapshot FILE to work offline"
            ))
            .because(e)
        })?;
        return Ok(KubeTarget { config, hint: ClusterHint::default(), source: "in-cluster configuration".into() });
    };
    let context = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| Error::config(format!("kubeconfig {source} has no current context; pass --context NAME")))?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::config(format!(
            "context {context:?} is not in kubeconfig {source}; use one of: {}",
            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
        )));
    }
    let hint = infer_cluster(&kubeconfig, &context);
    let options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map(bounded)
        .map_err(|e| bad_kubeconfig(&source, e))?;
    Ok(KubeTarget { config, hint, source: format!("context {context:?} of {source}") })
}

/// kube leaves reads without a timeout, so a server that accepts and never answers would hang the command
/// (a page of 500 pods arrives in well under this); and its default retry layer waits up to 15 times, up to
/// 1000 s each, in silence. Reads retry in `collect::kube::retry` instead: bounded, and saying that they wait.
fn bounded(mut config: kube::Config) -> kube::Config {
    config.read_timeout.get_or_insert(std::time::Duration::from_secs(60));
    config.default_retry = false;
    config
}

fn bad_kubeconfig(source: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::config(format!("cannot use kubeconfig {source}: {e}; fix the file or pass another with --kubeconfig"))
        .because(e)
}

/// Every context of the kubeconfig (`--all-contexts`), in the file's order.
pub fn context_names(options: &Options) -> Result<Vec<String>> {
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|e| bad_kubeconfig(&path.display().to_string(), e))?,
        None => match default_kubeconfig()? {
            Some((k, _)) => k,
            None => {
                return Err(Error::config(
                    "--all-contexts needs a kubeconfig; none was found ($KUBECONFIG, ~/.kube/config)",
                ));
            }
        },
    };
    Ok(kubeconfig.contexts.iter().map(|c| c.name.clone()).collect())
}

/// `$KUBECONFIG` (possibly several paths) or `~/.kube/config`; `None` when neither exists.
fn default_kubeconfig() -> Result<Option<(Kubeconfig, String)>> {
    let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let source = match &env {
        Some(v) => v.to_string_lossy().into_owned(),
        None => {
            let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
                return Ok(None);
            };
            let path = home.join(".kube").join("config");
            if !path.exists() {
                return Ok(None);
            }
            path.display().to_string()
        }
    };
    Kubeconfig::read().map(|k| Some((k, source.clone()))).map_err(|e| bad_kubeconfig(&source, e))
}

/// Reads the EKS cluster from a context: the context or cluster name as an EKS ARN
/// (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`, as `aws eks update-kubeconfig` writes), else the exec
/// plugin's `--cluster-name`/`--region` (`aws eks get-token`) or `-i`/`--cluster-id` (aws-iam-authenticator).
pub fn infer_cluster(kubeconfig: &Kubeconfig, context: &str) -> ClusterHint {
    let mut hint = ClusterHint::default();
    let ctx = kubeconfig.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref());
    let cluster_name = ctx.map(|c| c.cluster.as_str());
    if let Some((region, account, name)) = [Some(context), cluster_name].into_iter().flatten().find_map(parse_eks_arn) {
        hint = ClusterHint { name: Some(name), region: Some(region), account: Some(account), profile: None };
    }
    let user = ctx.and_then(|c| c.user.as_deref());
    let exec = kubeconfig
        .auth_infos
        .iter()
        .find(|a: &&NamedAuthInfo| Some(a.name.as_str()) == user)
        .and_then(|a| a.auth_info.as_ref())
        .and_then(|a| a.exec.as_ref());
    if let Some(exec) = exec {
        let args = exec.args.as_deref().unwrap_or_default();
        if hint.name.is_none() {
            hint.name = flag_value(args, &["--cluster-name", "-i", "--cluster-id"]);
        }
        if hint.region.is_none() {
            hint.region = flag_value(args, &["--region"]);
        }
        let env = exec.env.iter().flatten();
        for var in env {
            match (var.get("name").map(String::as_str), var.get("value")) {
                (Some("AWS_PROFILE"), Some(v)) => hint.profile = Some(v.clone()),
                (Some("AWS_REGION" | "AWS_DEFAULT_REGION"), Some(v)) if hint.region.is_none() => {
                    hint.region = Some(v.clone())
                }
                _ => {}
            }
        }
    }
    hint
}

/// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME` -> (region, account, name).
fn parse_eks_arn(s: &str) -> Option<(String, String, String)> {
    let arn: Arn = s.parse().ok()?;
    let name = arn.eks_cluster()?.to_string();
    Some((arn.region, arn.account, name))
}

/// The value of the first of `names` in `args`, as `--flag value` or `--flag=value`.
fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        names.iter().find_map(|name| {
            if arg == name {
                args.get(i + 1).cloned()
            } else {
                arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')).map(str::to_string)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    #[test]
    fn eks_arn_context_gives_name_region_and_account() {
        let kc = kubeconfig(
            r#"
apiVersion: v1
kind: Config
current-context: arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks
contexts:
- name: arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks
  context: {cluster: arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks, user: u}
clusters:
- name: arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks
  cluster: {server: https://example.eks.amazonaws.com}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, eu-west-1, eks, get-token, --cluster-name, prod-eks, --output, json]
      env: [{name: AWS_PROFILE, value: platform}]
"#,
        );
        let hint = infer_cluster(&kc, "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks");
        assert_eq!(
            hint,
            ClusterHint {
                name: Some("prod-eks".into()),
                region: Some("eu-west-1".into()),
                account: Some("111122223333".into()),
                profile: Some("platform".into()),
            }
        );
    }

    #[test]
    fn renamed_context_falls_back_to_exec_args() {
        let kc = kubeconfig(
            r#"
apiVersion: v1
kind: Config
contexts:
- name: prod
  context: {cluster: prod, user: eksctl}
- name: iam-auth
  context: {cluster: other, user: authenticator}
- name: kind
  context: {cluster: kind, user: kind}
clusters: []
users:
- name: eksctl
  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token, --cluster-name=staging, --region=us-east-2]}}
- name: authenticator
  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws-iam-authenticator, args: [token, -i, legacy]}}
- name: kind
  user: {token: abc}
"#,
        );
        let prod = infer_cluster(&kc, "prod");
        assert_eq!(
            (prod.name.as_deref(), prod.region.as_deref(), prod.account),
            (Some("staging"), Some("us-east-2"), None)
        );
        assert_eq!(infer_cluster(&kc, "iam-auth").name.as_deref(), Some("legacy"));
        assert_eq!(infer_cluster(&kc, "kind"), ClusterHint::default());
    }

    #[tokio::test]
    async fn a_broken_kubeconfig_keeps_the_parse_error_underneath() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "clusters: [not: a: list").unwrap();
        let options = Options { kubeconfig: Some(path.clone()), ..Default::default() };
        let Err(e) = load(&options).await else { panic!("a broken kubeconfig loads") };
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        let source = std::error::Error::source(&e).expect("the parse error is kept");
        assert!(source.downcast_ref::<kube::config::KubeconfigError>().is_some(), "{source:?}");
    }
}
