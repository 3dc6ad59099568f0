//! The four fakes wired as one EKS cluster (`prod`, us-west-2, account 111122223333) with IAM and STS, and the
//! binary pointed at all of them: the scaffolding the audit, annotate and doctor tests share. Usage times are
//! relative to the moment the fakes were built, so "used" and "stale" do not drift with the calendar.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::cli::{Cmd, Context, Kubeconfig, KubeconfigFile};
use super::eks::{FakeEks, RunningEks};
use super::fixtures::{PodBuilder, daemon_set, pod, replica_set, service_account};
use super::iam::{FakeIam, RoleSpec, RunningIam, allow, irsa_trust};
use super::kube_api::{FakeKube, RunningKube};
use super::sts::{FakeSts, RunningSts};

pub const ACCOUNT: &str = "111122223333";

/// The fakes before they start, and the moment usage times are relative to.
pub struct Fakes {
    pub kube: FakeKube,
    pub eks: FakeEks,
    pub iam: FakeIam,
    pub sts: FakeSts,
    pub now: Timestamp,
    /// Cluster `prod`'s OIDC issuer URL.
    pub issuer: String,
}

impl Fakes {
    /// Cluster `prod` (us-west-2, account 111122223333) with a ready Pod Identity agent; IAM jobs done after
    /// 50 ms; STS keys known to IAM.
    pub fn new() -> Self {
        let kube = FakeKube::new();
        kube.add(daemon_set("kube-system", "eks-pod-identity-agent", 2, 2).build());
        let eks = FakeEks::new();
        let issuer = eks.add_cluster("prod", "us-west-2", ACCOUNT);
        let iam = FakeIam::new(ACCOUNT);
        iam.job_delay(Duration::from_millis(50));
        let sts = FakeSts::new(ACCOUNT);
        sts.share_keys_with(&iam);
        let now = Timestamp::now().round(jiff::Unit::Second).expect("round now");
        Fakes { kube, eks, iam, sts, now, issuer }
    }

    /// RFC 3339, whole seconds, `days` before the fakes were built.
    pub fn ago(&self, days: i64) -> String {
        ago(self.now, days)
    }

    /// A role in the primary account (`name`, or `path/name`) allowed `actions`, last used `last_used` days ago.
    pub fn role(&self, name: &str, actions: &[&str], last_used: Option<i64>) -> String {
        let (path, name) = match name.rsplit_once('/') {
            Some((path, name)) => (format!("/{path}/"), name),
            None => ("/".to_string(), name),
        };
        let mut spec = RoleSpec::new(name).path(&path).inline("main", allow(actions));
        if let Some(days) = last_used {
            spec = spec.last_used(&self.ago(days), "us-west-2");
        }
        self.iam.add_role(spec)
    }

    /// Service `namespace` last used by `role` (name or ARN) `days` ago.
    pub fn used(&self, role: &str, namespace: &str, days: i64) {
        self.iam.set_usage(role, namespace, Some(&self.ago(days)), None, Some("us-west-2"));
    }

    /// A Deployment whose service account carries the IRSA annotation, with one pod the webhook injected; a
    /// role of the fake IAM is made to trust that service account, as a wired-up IRSA role does.
    pub fn irsa_app(&self, ns: &str, sa: &str, deployment: &str, role_arn: &str) {
        if self.iam.has_role(role_arn) {
            let account = role_arn.split(':').nth(4).unwrap_or(ACCOUNT);
            self.iam.trust_also(role_arn, &irsa_trust(account, &self.issuer, ns, sa));
        }
        self.kube.add(service_account(ns, sa).irsa(role_arn).build());
        self.deployment_pod(ns, sa, deployment, |p| p.irsa(role_arn));
    }

    /// A Deployment bound by a Pod Identity association (optionally chaining to `target`).
    pub fn pod_identity_app(&self, ns: &str, sa: &str, deployment: &str, role_arn: &str, target: Option<&str>) {
        self.kube.add(service_account(ns, sa).build());
        self.eks.add_association("prod", ns, sa, role_arn, target);
        self.deployment_pod(ns, sa, deployment, |p| p.pod_identity());
    }

    pub fn deployment_pod(
        &self,
        ns: &str,
        sa: &str,
        deployment: &str,
        identity: impl FnOnce(PodBuilder) -> PodBuilder,
    ) {
        let rs = format!("{deployment}-7d9f4");
        self.kube.add(replica_set(ns, &rs).owner("Deployment", deployment).build());
        let builder = pod(ns, &format!("{rs}-x2m9p")).service_account(sa).owner("ReplicaSet", &rs);
        self.kube.add(identity(builder).build());
    }

    pub fn start(self) -> World {
        let kube = self.kube.start();
        let kubeconfig = Kubeconfig::single(Context::eks("prod", "us-west-2", ACCOUNT, &kube.url())).write();
        World { kube, eks: self.eks.start(), iam: self.iam.start(), sts: self.sts.start(), kubeconfig, now: self.now }
    }
}

/// The started fakes and a kubeconfig whose context is the EKS cluster.
pub struct World {
    pub kube: RunningKube,
    pub eks: RunningEks,
    pub iam: RunningIam,
    pub sts: RunningSts,
    pub kubeconfig: KubeconfigFile,
    pub now: Timestamp,
}

impl World {
    pub fn ago(&self, days: i64) -> String {
        ago(self.now, days)
    }

    /// The binary with credentials and every AWS endpoint pointed at the fakes; a fresh HOME, so a fresh cache.
    pub fn cmd(&self) -> Cmd {
        aws_cmd(&self.kubeconfig, &self.eks, &self.iam, &self.sts)
    }
}

/// Starts hand-built fakes as cluster `prod` (us-west-2) with an STS that knows IAM's keys, and a kubeconfig
/// whose context is that EKS cluster with `namespace` as its default.
pub fn start_prod(kube: FakeKube, eks: FakeEks, iam: FakeIam, namespace: &str) -> World {
    let sts = FakeSts::new(ACCOUNT);
    sts.share_keys_with(&iam);
    let kube = kube.start();
    let kubeconfig =
        Kubeconfig::single(Context::eks("prod", "us-west-2", ACCOUNT, &kube.url()).namespace(namespace)).write();
    World { kube, eks: eks.start(), iam: iam.start(), sts: sts.start(), kubeconfig, now: Timestamp::now() }
}

/// The binary with `kubeconfig`, static credentials, and EKS, IAM and STS pointed at the fakes.
pub fn aws_cmd(kubeconfig: &KubeconfigFile, eks: &RunningEks, iam: &RunningIam, sts: &RunningSts) -> Cmd {
    Cmd::new()
        .kubeconfig(kubeconfig)
        .aws_credentials()
        .eks_endpoint(&eks.url())
        .env("AWS_ENDPOINT_URL_IAM", iam.url())
        .env("AWS_ENDPOINT_URL_STS", sts.url())
}

pub fn ago(now: Timestamp, days: i64) -> String {
    now.checked_sub(SignedDuration::from_hours(24 * days)).expect("a time in range").to_string()
}
