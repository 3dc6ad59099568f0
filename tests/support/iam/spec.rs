//! How a test describes a role for [`FakeIam::add_role`], and the policies such roles usually carry.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde_json::{Value, json};

use super::{CREATED, FakeIam, timestamp};

/// A role to add with [`FakeIam::add_role`]; build it with [`RoleSpec::new`] and the setters.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub name: String,
    pub path: String,
    /// `None` = the fake's primary account.
    pub account: Option<String>,
    pub trust_policy: String,
    /// Inline policies, name -> JSON document.
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs (customer or AWS managed); add customer ones first.
    pub attached: Vec<String>,
    pub description: Option<String>,
    /// `(LastUsedDate, Region)` as `GetRole` reports it.
    pub last_used: Option<(String, String)>,
    pub max_session_duration: u32,
    pub create_date: String,
}

impl RoleSpec {
    /// Path `/`, a Pod Identity trust policy, no permissions, never used.
    pub fn new(name: &str) -> Self {
        RoleSpec {
            name: name.into(),
            path: "/".into(),
            account: None,
            trust_policy: pod_identity_trust().to_string(),
            inline: BTreeMap::new(),
            attached: Vec::new(),
            description: None,
            last_used: None,
            max_session_duration: 3600,
            create_date: CREATED.into(),
        }
    }

    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    pub fn account(mut self, account: &str) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Any JSON text or `serde_json::Value`.
    pub fn trust(mut self, document: impl Display) -> Self {
        self.trust_policy = document.to_string();
        self
    }

    pub fn inline(mut self, name: &str, document: impl Display) -> Self {
        self.inline.insert(name.into(), document.to_string());
        self
    }

    pub fn attach(mut self, policy_arn: &str) -> Self {
        self.attached.push(policy_arn.into());
        self
    }

    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn last_used(mut self, date: &str, region: &str) -> Self {
        timestamp(date);
        self.last_used = Some((date.into(), region.into()));
        self
    }

    pub fn created(mut self, date: &str) -> Self {
        timestamp(date);
        self.create_date = date.into();
        self
    }
}

/// The trust policy EKS Pod Identity needs.
pub fn pod_identity_trust() -> Value {
    json!({ "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": { "Service": "pods.eks.amazonaws.com" },
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }]})
}

/// The trust policy IRSA needs for `system:serviceaccount:NS:SA` of the cluster whose OIDC issuer is `issuer`.
pub fn irsa_trust(account: &str, issuer: &str, namespace: &str, service_account: &str) -> Value {
    let host = issuer.trim_start_matches("https://");
    json!({ "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": { "Federated": format!("arn:aws:iam::{account}:oidc-provider/{host}") },
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": { "StringEquals": {
            format!("{host}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
            format!("{host}:aud"): "sts.amazonaws.com",
        }},
    }]})
}

/// A policy allowing `actions` on everything, handy for inline policies.
pub fn allow(actions: &[&str]) -> Value {
    json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }] })
}
