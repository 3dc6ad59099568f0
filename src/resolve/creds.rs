//! What credentials a pod really carries, read from the env the webhooks injected at creation.

use crate::model::PodInfo;

pub const ROLE_ARN_ENV: &str = "AWS_ROLE_ARN";
pub const TOKEN_FILE_ENV: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const CONTAINER_CREDS_ENV: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const STATIC_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
/// Where the webhook mounts the IRSA token (Linux, and the path it rewrites for Windows nodes).
const WEBHOOK_TOKEN_FILES: [&str; 2] = [
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token",
];

/// An IRSA role a pod uses, and whether someone set it by hand rather than the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrsaUse<'a> {
    pub role: &'a str,
    pub hand_set: bool,
}

/// The identity a pod's containers carry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PodCreds<'a> {
    /// Distinct IRSA roles, in container order.
    pub irsa: Vec<IrsaUse<'a>>,
    /// Some container uses Pod Identity (container credentials without web identity).
    pub pod_identity: bool,
    /// Containers that carry long-lived keys in `AWS_ACCESS_KEY_ID`.
    pub static_keys: Vec<&'a str>,
    /// Containers that set `AWS_ROLE_ARN` without a token file, and the role: the webhook then injects
    /// nothing into them and no SDK assumes that role.
    pub inert_roles: Vec<(&'a str, &'a str)>,
}

impl PodCreds<'_> {
    /// No container has any workload identity: the pod falls back to the node role.
    pub fn is_none(&self) -> bool {
        self.irsa.is_empty() && !self.pod_identity
    }
}

/// Reads a pod's identity. Per container, web identity wins over container credentials, as in every
/// AWS SDK's default chain.
///
/// The webhook (amazon-eks-pod-identity-webhook, `addEnvToContainer`) injects `AWS_ROLE_ARN` and
/// `AWS_WEB_IDENTITY_TOKEN_FILE` together, pointing at its own token volume, and injects neither into a
/// container that already sets one of them. So a role is hand-set when the webhook's volume is absent,
/// when the token file is not the webhook's, or when containers disagree and this one differs from the
/// service account's `annotated_role`.
pub fn pod_creds<'a>(pod: &'a PodInfo, annotated_role: Option<&str>) -> PodCreds<'a> {
    let mut creds = PodCreds::default();
    // (role, whether this container's token file is someone else's)
    let mut roles: Vec<(&'a str, bool)> = Vec::new();
    for c in &pod.containers {
        if c.env.contains_key(STATIC_KEY_ENV) {
            creds.static_keys.push(&c.name);
        }
        let role = c.env.get(ROLE_ARN_ENV).and_then(|v| v.as_deref());
        let token = c.env.get(TOKEN_FILE_ENV);
        match (role, token) {
            (Some(role), Some(token)) => {
                let foreign = !token.as_deref().is_some_and(|t| WEBHOOK_TOKEN_FILES.contains(&t));
                match roles.iter_mut().find(|(r, _)| *r == role) {
                    Some(seen) => seen.1 |= foreign,
                    None => roles.push((role, foreign)),
                }
                continue;
            }
            (Some(role), None) => creds.inert_roles.push((&c.name, role)),
            _ => {}
        }
        if c.env.contains_key(CONTAINER_CREDS_ENV) {
            creds.pod_identity = true;
        }
    }
    let disagree = roles.len() > 1;
    creds.irsa = roles
        .into_iter()
        .map(|(role, foreign)| IrsaUse {
            role,
            hand_set: foreign || !pod.irsa_token_volume || (disagree && Some(role) != annotated_role),
        })
        .collect();
    creds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerInfo;

    fn container(name: &str, env: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            env: env.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect(),
        }
    }

    fn pod(containers: Vec<ContainerInfo>, volume: bool) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: "p".into(),
            service_account: "sa".into(),
            owner: None,
            labels: Default::default(),
            containers,
            irsa_token_volume: volume,
            host_network: false,
            fargate: false,
            phase: None,
        }
    }

    const TOKEN: (&str, &str) = (TOKEN_FILE_ENV, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
    const PI: (&str, &str) = (CONTAINER_CREDS_ENV, "http://169.254.170.23/v1/credentials");

    #[test]
    fn webhook_injected_irsa() {
        let p = pod(
            vec![
                container("app", &[(ROLE_ARN_ENV, "arn:a"), TOKEN]),
                container("side", &[(ROLE_ARN_ENV, "arn:a"), TOKEN]),
            ],
            true,
        );
        let c = pod_creds(&p, Some("arn:a"));
        assert_eq!(c.irsa, vec![IrsaUse { role: "arn:a", hand_set: false }]);
        assert!(!c.pod_identity && !c.is_none());
    }

    #[test]
    fn web_identity_wins_over_container_credentials_in_one_container() {
        let p = pod(vec![container("app", &[(ROLE_ARN_ENV, "arn:a"), TOKEN, PI])], true);
        let c = pod_creds(&p, None);
        assert_eq!(c.irsa.len(), 1);
        assert!(!c.pod_identity);
        let p = pod(vec![container("app", &[PI])], false);
        assert!(pod_creds(&p, None).pod_identity);
    }

    #[test]
    fn hand_set_roles() {
        // No webhook volume: whoever set AWS_ROLE_ARN, it was not the webhook.
        let p = pod(vec![container("app", &[(ROLE_ARN_ENV, "arn:x"), TOKEN])], false);
        assert!(pod_creds(&p, None).irsa[0].hand_set);
        // Webhook injected, but one container kept its own value.
        let p = pod(
            vec![
                container("app", &[(ROLE_ARN_ENV, "arn:a"), TOKEN]),
                container("tool", &[(ROLE_ARN_ENV, "arn:x"), TOKEN]),
            ],
            true,
        );
        let c = pod_creds(&p, Some("arn:a"));
        assert_eq!(c.irsa, vec![IrsaUse { role: "arn:a", hand_set: false }, IrsaUse { role: "arn:x", hand_set: true }]);
    }

    #[test]
    fn no_identity_and_static_keys() {
        let p = pod(vec![container("app", &[(STATIC_KEY_ENV, "AKIA...")]), container("side", &[])], false);
        let c = pod_creds(&p, None);
        assert!(c.is_none());
        assert_eq!(c.static_keys, vec!["app"]);
        // AWS_ROLE_ARN without a token file is not web identity.
        let p = pod(vec![container("app", &[(ROLE_ARN_ENV, "arn:a")])], false);
        let c = pod_creds(&p, None);
        assert!(c.is_none());
        assert_eq!(c.inert_roles, vec![("app", "arn:a")], "a role set by hand without a token file is reported");
    }

    #[test]
    fn a_token_file_that_is_not_the_webhooks_is_hand_set() {
        let p = pod(vec![container("app", &[(ROLE_ARN_ENV, "arn:a"), (TOKEN_FILE_ENV, "/tokens/mine")])], true);
        assert!(pod_creds(&p, Some("arn:a")).irsa[0].hand_set);
        let p = pod(vec![container("app", &[(ROLE_ARN_ENV, "arn:a"), TOKEN])], true);
        assert!(!pod_creds(&p, Some("arn:a")).irsa[0].hand_set);
    }
}
