//! IAM role ARNs: parsing, display and the matching rules of `who-uses`.

use std::fmt;
use std::str::FromStr;

/// Any ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, with a real partition and no whitespace or
/// control characters. The one place an ARN string is split; [`RoleArn`], EKS cluster ARNs, OIDC provider
/// ARNs and the caller's STS ARN are all read through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    /// Empty for global services (IAM).
    pub region: String,
    /// Empty for resources of no account (S3 buckets).
    pub account: String,
    /// Everything after the fifth colon (`role/team/app`, `cluster/prod`).
    pub resource: String,
}

impl Arn {
    /// This ARN's resource after `kind/` (`cluster/prod` -> `prod` for `kind` "cluster").
    pub fn resource_of(&self, kind: &str) -> Option<&str> {
        self.resource.strip_prefix(kind)?.strip_prefix('/').filter(|rest| !rest.is_empty())
    }

    /// The EKS cluster this ARN names: `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub fn eks_cluster(&self) -> Option<&str> {
        (self.service == "eks" && !self.region.is_empty()).then(|| self.resource_of("cluster")).flatten()
    }
}

/// Why a string is not the ARN wanted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {wanted}: {reason}")]
pub struct ArnError {
    pub value: String,
    /// What was expected, with an example.
    pub wanted: &'static str,
    pub reason: &'static str,
}

const AN_ARN: &str = "an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)";
const A_ROLE_ARN: &str = "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)";

impl FromStr for Arn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ArnError { value: s.to_string(), wanted: AN_ARN, reason };
        // The webhook and IAM take the value verbatim: a stray space or newline is not trimmed away for them.
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(whitespace_reason(s)));
        }
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("it does not have the six colon-separated parts of an ARN"));
        };
        if !PARTITIONS.contains(&partition) {
            return Err(err(
                "the partition must be one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc",
            ));
        }
        if service.is_empty() {
            return Err(err("the service is empty"));
        }
        Ok(Arn {
            partition: partition.to_string(),
            service: service.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            resource: resource.to_string(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:{}:{}:{}:{}", self.partition, self.service, self.region, self.account, self.resource)
    }
}

/// A parsed IAM role ARN: `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
    /// The role path, always starting and ending with `/` (`/` when the role has none).
    pub path: String,
    pub name: String,
}

impl FromStr for RoleArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ArnError { value: s.to_string(), wanted: A_ROLE_ARN, reason };
        let arn: Arn = s.parse().map_err(|e: ArnError| err(e.reason))?;
        if arn.service != "iam" {
            return Err(err("the service must be iam"));
        }
        if !arn.region.is_empty() {
            return Err(err("IAM ARNs have an empty region"));
        }
        if !valid_account(&arn.account) {
            return Err(err("the account must be 12 digits"));
        }
        let Some(path_and_name) = arn.resource.strip_prefix("role/") else {
            return Err(err("the resource must start with role/"));
        };
        let (path, name) = match path_and_name.rfind('/') {
            Some(i) => (format!("/{}", &path_and_name[..=i]), &path_and_name[i + 1..]),
            None => ("/".to_string(), path_and_name),
        };
        if !valid_role_name(name) {
            return Err(err("the role name must be 1-64 of letters, digits and +=,.@_-"));
        }
        if path.contains("//") {
            return Err(err("the role path has an empty segment"));
        }
        if path.len() > 512 || !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(err("the role path must be at most 512 printable ASCII characters"));
        }
        Ok(RoleArn { partition: arn.partition, account: arn.account, path, name: name.to_string() })
    }
}

/// An AWS account id: 12 digits.
pub fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// The AWS partitions, as IAM ARNs name them.
pub const PARTITIONS: &[&str] =
    &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// The partition a region belongs to (`cn-north-1` is in `aws-cn`); regions of no special partition are `aws`.
pub fn partition_of_region(region: &str) -> &'static str {
    const PREFIXES: &[(&str, &str)] = &[
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-iso-", "aws-iso"),
        ("eusc-", "aws-eusc"),
    ];
    PREFIXES.iter().find(|(prefix, _)| region.starts_with(prefix)).map_or("aws", |(_, partition)| partition)
}

/// Says exactly which whitespace or control character a value carries, and where.
fn whitespace_reason(s: &str) -> &'static str {
    match (s.chars().next(), s.chars().last()) {
        (Some(c), _) if c.is_whitespace() => {
            "it starts with whitespace, which the webhook and IAM keep as part of the value"
        }
        (_, Some('\n')) => "it ends with a newline (often from a YAML block scalar such as `|`); remove it",
        (_, Some(c)) if c.is_whitespace() => {
            "it ends with whitespace, which the webhook and IAM keep as part of the value"
        }
        _ if s.chars().any(char::is_control) => "it contains a control character; an ARN is printable ASCII only",
        _ => "it contains whitespace; an ARN has none",
    }
}

fn valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:iam::{}:role{}{}", self.partition, self.account, self.path, self.name)
    }
}

/// What a user typed to name a role: a bare name, or an ARN with or without the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleQuery {
    Name(String),
    Arn { arn: RoleArn, with_path: bool },
}

impl RoleQuery {
    /// Parses a role name or ARN; errors name what is wrong with the ARN.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let s = s.trim();
        if s.starts_with("arn:") {
            let arn: RoleArn = s.parse()?;
            // IAM role names are unique in an account whatever their path, so an ARN typed without the
            // path still names exactly one role.
            let with_path = arn.path != "/";
            Ok(RoleQuery::Arn { arn, with_path })
        } else if valid_role_name(s) {
            Ok(RoleQuery::Name(s.to_string()))
        } else {
            Err(ArnError {
                value: s.to_string(),
                wanted: "a role name or ARN",
                reason: "a role name is 1-64 of letters, digits and +=,.@_-",
            })
        }
    }

    /// Whether the role ARN `candidate` (as found in the cluster) is the role this query names.
    pub fn matches(&self, candidate: &str) -> bool {
        let Ok(c) = candidate.parse::<RoleArn>() else {
            return false;
        };
        match self {
            RoleQuery::Name(name) => c.name == *name,
            RoleQuery::Arn { arn, with_path } => {
                c.partition == arn.partition
                    && c.account == arn.account
                    && c.name == arn.name
                    && (!with_path || c.path == arn.path)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_pathed_arns() {
        let a: RoleArn = "arn:aws:iam::111122223333:role/payments-api".parse().unwrap();
        assert_eq!((a.account.as_str(), a.path.as_str(), a.name.as_str()), ("111122223333", "/", "payments-api"));
        assert_eq!(a.to_string(), "arn:aws:iam::111122223333:role/payments-api");
        let b: RoleArn = "arn:aws-cn:iam::111122223333:role/team/a/runner".parse().unwrap();
        assert_eq!((b.partition.as_str(), b.path.as_str(), b.name.as_str()), ("aws-cn", "/team/a/", "runner"));
        assert_eq!(b.to_string(), "arn:aws-cn:iam::111122223333:role/team/a/runner");
    }

    #[test]
    fn rejects_malformed_arns_with_a_reason() {
        for (bad, why) in [
            ("payments-api", "six"),
            ("arn:aws:iam::1111:role/x", "12 digits"),
            ("arn:aws:s3:::bucket/x", "service"),
            ("arn:aws:iam::111122223333:user/x", "role/"),
            ("arn:aws:iam::111122223333:role/", "role name"),
            ("arn:aws:iam::111122223333:role/a b", "contains whitespace"),
            ("arn:aws:iam::111122223333:role/a*b", "role name"),
            ("arn:aws:iam:us-east-1:111122223333:role/x", "empty region"),
            ("arn:awsx:iam::111122223333:role/x", "partition"),
            ("arn:aws:iam::111122223333:role/x\n", "ends with a newline"),
            ("arn:aws:iam::111122223333:role/x ", "ends with whitespace"),
            (" arn:aws:iam::111122223333:role/x", "starts with whitespace"),
            ("arn:aws:iam::111122223333:role/a\u{1b}[31m/x", "control character"),
            ("arn:aws:iam::111122223333:role/a\u{e9}/x", "printable ASCII"),
        ] {
            let e = bad.parse::<RoleArn>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn any_arn_and_eks_clusters() {
        let a: Arn = "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks".parse().unwrap();
        assert_eq!(a.eks_cluster(), Some("prod-eks"));
        assert_eq!((a.region.as_str(), a.account.as_str()), ("eu-west-1", "111122223333"));
        assert_eq!(a.to_string(), "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks");
        let sts: Arn = "arn:aws-cn:sts::111122223333:assumed-role/auditor/session".parse().unwrap();
        assert_eq!((sts.partition.as_str(), sts.eks_cluster()), ("aws-cn", None));
        assert_eq!(sts.resource_of("assumed-role"), Some("auditor/session"));
        for bad in ["arn:aws:eks:eu-west-1:111122223333:cluster/", "arn:aws:eks::111122223333:cluster/x"] {
            assert_eq!(bad.parse::<Arn>().unwrap().eks_cluster(), None, "{bad}");
        }
        for bad in ["arn:aws:eks", "arn:nope:eks:r:1:cluster/x", "arn:aws::r:1:x", "arn:aws:eks:r:1:cluster/a b"] {
            assert!(bad.parse::<Arn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions_of_regions() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        for p in PARTITIONS {
            assert!(format!("arn:{p}:iam::111122223333:role/x").parse::<RoleArn>().is_ok(), "{p}");
        }
    }

    #[test]
    fn query_by_name_ignores_path_and_account() {
        let q = RoleQuery::parse("runner").unwrap();
        assert!(q.matches("arn:aws:iam::111122223333:role/team/runner"));
        assert!(q.matches("arn:aws:iam::444455556666:role/runner"));
        assert!(!q.matches("arn:aws:iam::111122223333:role/runner-2"));
        assert!(!q.matches("not-an-arn"));
    }

    #[test]
    fn query_by_arn_without_path_matches_any_path_in_that_account() {
        let q = RoleQuery::parse("arn:aws:iam::111122223333:role/runner").unwrap();
        assert!(q.matches("arn:aws:iam::111122223333:role/team/runner"));
        assert!(!q.matches("arn:aws:iam::444455556666:role/runner"));
        let pathed = RoleQuery::parse("arn:aws:iam::111122223333:role/team/runner").unwrap();
        assert!(pathed.matches("arn:aws:iam::111122223333:role/team/runner"));
        assert!(!pathed.matches("arn:aws:iam::111122223333:role/other/runner"));
        assert!(RoleQuery::parse("arn:aws:iam::1:role/x").is_err());
        assert!(RoleQuery::parse("bad name!").is_err());
    }
}
