//! From a CloudTrail event to the IAM action that authorised it: the IAM prefix of the event source plus the
//! event name, with the documented exceptions where the two differ.

/// Event sources whose IAM prefix is not their host name.
const SOURCES: &[(&str, &str)] = &[
    ("monitoring", "cloudwatch"),
    ("email", "ses"),
    ("streams.dynamodb", "dynamodb"),
    ("runtime.sagemaker", "sagemaker"),
    ("api.ecr", "ecr"),
    ("ecr-public", "ecr-public"),
    ("elasticfilesystem", "elasticfilesystem"),
];

/// S3 events named after the API call whose permission has another name.
const S3_NAMES: &[(&str, &str)] = &[
    ("ListObjects", "ListBucket"),
    ("ListObjectsV2", "ListBucket"),
    ("HeadBucket", "ListBucket"),
    ("ListObjectVersions", "ListBucketVersions"),
    ("HeadObject", "GetObject"),
    ("CopyObject", "PutObject"),
    ("UploadPart", "PutObject"),
    ("UploadPartCopy", "PutObject"),
    ("CreateMultipartUpload", "PutObject"),
    ("CompleteMultipartUpload", "PutObject"),
    ("DeleteObjects", "DeleteObject"),
];

/// Calls that need no permission: they are never evidence that a grant is used.
const UNAUTHORISED: &[&str] = &["sts:GetCallerIdentity"];

/// The IAM action of an event (`s3.amazonaws.com` + `GetObject` -> `s3:GetObject`); `None` for an event of
/// no AWS service or one that needs no permission.
pub fn action(event_source: &str, event_name: &str) -> Option<String> {
    let host = event_source.strip_suffix(".amazonaws.com")?;
    let service = SOURCES.iter().find(|(h, _)| *h == host).map_or(host, |(_, prefix)| prefix);
    if service.is_empty() || event_name.is_empty() {
        return None;
    }
    let name = match service {
        "s3" => S3_NAMES.iter().find(|(e, _)| *e == event_name).map_or(event_name, |(_, a)| a),
        // Lambda's events carry the API version (`GetFunction20150331v2`); its data event is `Invoke`.
        "lambda" => match strip_api_version(event_name) {
            "Invoke" => "InvokeFunction",
            name => name,
        },
        _ => event_name,
    };
    let action = format!("{service}:{name}");
    (!UNAUTHORISED.contains(&action.as_str())).then_some(action)
}

/// `GetFunction20150331v2` -> `GetFunction`: a trailing date of 8 digits, optionally `v` and digits.
fn strip_api_version(name: &str) -> &str {
    let without_v = match name.rfind('v') {
        Some(i) if i + 1 < name.len() && name[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &name[..i],
        _ => name,
    };
    let digits = without_v.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 8 { &without_v[..without_v.len() - 8] } else { name }
}

/// The error codes of a refused call (an attempt, not a grant in use).
pub const DENIED_CODES: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"];

/// Whether an error code means the call was refused.
pub fn is_denied(error_code: &str) -> bool {
    DENIED_CODES.contains(&error_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_of_events() {
        let cases = [
            ("s3.amazonaws.com", "GetObject", Some("s3:GetObject")),
            ("s3.amazonaws.com", "ListObjectsV2", Some("s3:ListBucket")),
            ("s3.amazonaws.com", "HeadObject", Some("s3:GetObject")),
            ("sqs.amazonaws.com", "ReceiveMessage", Some("sqs:ReceiveMessage")),
            ("monitoring.amazonaws.com", "PutMetricData", Some("cloudwatch:PutMetricData")),
            ("lambda.amazonaws.com", "GetFunction20150331v2", Some("lambda:GetFunction")),
            ("lambda.amazonaws.com", "Invoke", Some("lambda:InvokeFunction")),
            ("lambda.amazonaws.com", "ListFunctions20150331", Some("lambda:ListFunctions")),
            ("kms.amazonaws.com", "Decrypt", Some("kms:Decrypt")),
            ("sts.amazonaws.com", "GetCallerIdentity", None),
            ("signin.example.com", "ConsoleLogin", None),
            ("ec2.amazonaws.com", "", None),
        ];
        for (source, name, expected) in cases {
            assert_eq!(action(source, name).as_deref(), expected, "{source} {name}");
        }
        assert!(is_denied("AccessDenied") && is_denied("Client.UnauthorizedOperation"));
        assert!(!is_denied("NoSuchKey") && !is_denied("ThrottlingException"));
    }
}
