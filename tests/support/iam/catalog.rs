//! What the fake IAM knows about AWS itself: a catalog of real services (namespace and the name Access Advisor
//! shows), the management actions IAM tracks at action level, and a few AWS managed policies.

use serde_json::{Value, json};

/// `(namespace, service name)`, sorted by namespace as Access Advisor sorts its report.
pub const SERVICES: &[(&str, &str)] = &[
    ("acm", "AWS Certificate Manager"),
    ("apigateway", "Amazon API Gateway"),
    ("athena", "Amazon Athena"),
    ("autoscaling", "Amazon EC2 Auto Scaling"),
    ("cloudformation", "AWS CloudFormation"),
    ("cloudfront", "Amazon CloudFront"),
    ("cloudwatch", "Amazon CloudWatch"),
    ("dynamodb", "Amazon DynamoDB"),
    ("ec2", "Amazon EC2"),
    ("ecr", "Amazon Elastic Container Registry"),
    ("ecs", "Amazon Elastic Container Service"),
    ("eks", "Amazon Elastic Kubernetes Service"),
    ("elasticache", "Amazon ElastiCache"),
    ("elasticloadbalancing", "Elastic Load Balancing"),
    ("es", "Amazon OpenSearch Service"),
    ("events", "Amazon EventBridge"),
    ("firehose", "Amazon Kinesis Firehose"),
    ("glue", "AWS Glue"),
    ("iam", "AWS Identity and Access Management"),
    ("kinesis", "Amazon Kinesis"),
    ("kms", "AWS Key Management Service"),
    ("lambda", "AWS Lambda"),
    ("logs", "Amazon CloudWatch Logs"),
    ("rds", "Amazon RDS"),
    ("route53", "Amazon Route 53"),
    ("s3", "Amazon S3"),
    ("s3-object-lambda", "Amazon S3 Object Lambda"),
    ("secretsmanager", "AWS Secrets Manager"),
    ("ses", "Amazon SES"),
    ("sns", "Amazon SNS"),
    ("sqs", "Amazon SQS"),
    ("ssm", "AWS Systems Manager"),
    ("states", "AWS Step Functions"),
    ("sts", "AWS Security Token Service"),
    ("xray", "AWS X-Ray"),
];

/// Action-level last accessed covers management actions of a few services only; `ActionName` is written
/// without the service prefix (e.g. `CreateBucket`). A sample of each service's tracked actions, sorted.
pub const TRACKED: &[(&str, &[&str])] = &[
    (
        "ec2",
        &[
            "AuthorizeSecurityGroupIngress",
            "CreateSecurityGroup",
            "CreateSnapshot",
            "CreateVpc",
            "DeleteSecurityGroup",
            "DeleteVpc",
            "RunInstances",
            "TerminateInstances",
        ],
    ),
    (
        "iam",
        &[
            "AttachRolePolicy",
            "CreatePolicy",
            "CreateRole",
            "CreateUser",
            "DeleteRole",
            "DeleteUser",
            "PutRolePolicy",
            "UpdateAssumeRolePolicy",
        ],
    ),
    (
        "lambda",
        &[
            "AddPermission",
            "CreateEventSourceMapping",
            "CreateFunction",
            "DeleteFunction",
            "UpdateFunctionCode",
            "UpdateFunctionConfiguration",
        ],
    ),
    (
        "s3",
        &[
            "CreateAccessPoint",
            "CreateBucket",
            "DeleteBucket",
            "DeleteBucketPolicy",
            "PutBucketAcl",
            "PutBucketPolicy",
            "PutBucketVersioning",
            "PutEncryptionConfiguration",
            "PutLifecycleConfiguration",
        ],
    ),
];

pub fn service_name(namespace: &str) -> Option<&'static str> {
    SERVICES.iter().find(|(ns, _)| *ns == namespace).map(|(_, name)| *name)
}

pub fn tracked_actions(namespace: &str) -> Option<&'static [&'static str]> {
    TRACKED.iter().find(|(ns, _)| *ns == namespace).map(|(_, actions)| *actions)
}

/// An AWS managed policy: `(name, default version id, description, document)`.
pub struct AwsManaged {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub document: Value,
}

/// A few AWS managed policies (`arn:aws:iam::aws:policy/NAME`) with their real statements.
pub fn aws_managed() -> Vec<AwsManaged> {
    let doc = |statements: Value| json!({ "Version": "2012-10-17", "Statement": statements });
    vec![
        AwsManaged {
            name: "AdministratorAccess",
            version: "v1",
            description: "Provides full access to AWS services and resources.",
            document: doc(json!([{ "Effect": "Allow", "Action": "*", "Resource": "*" }])),
        },
        AwsManaged {
            name: "AmazonS3ReadOnlyAccess",
            version: "v3",
            description: "Provides read only access to all buckets via the AWS Management Console.",
            document: doc(json!([{
                "Effect": "Allow",
                "Action": ["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*"],
                "Resource": "*",
            }])),
        },
        AwsManaged {
            name: "AmazonS3FullAccess",
            version: "v2",
            description: "Provides full access to all buckets via the AWS Management Console.",
            document: doc(json!([{ "Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"], "Resource": "*" }])),
        },
        AwsManaged {
            name: "AmazonSQSFullAccess",
            version: "v1",
            description: "Provides full access to Amazon SQS via the AWS Management Console.",
            document: doc(json!([{ "Action": ["sqs:*"], "Effect": "Allow", "Resource": "*" }])),
        },
        AwsManaged {
            name: "AmazonEC2ContainerRegistryReadOnly",
            version: "v3",
            description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
            document: doc(json!([{
                "Effect": "Allow",
                "Action": [
                    "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                    "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages",
                    "ecr:BatchGetImage", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
                    "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings",
                ],
                "Resource": "*",
            }])),
        },
        AwsManaged {
            name: "CloudWatchAgentServerPolicy",
            version: "v2",
            description: "Permissions required to use AmazonCloudWatchAgent on servers",
            document: doc(json!([
                {
                    "Effect": "Allow",
                    "Action": [
                        "cloudwatch:PutMetricData", "ec2:DescribeVolumes", "ec2:DescribeTags", "logs:PutLogEvents",
                        "logs:DescribeLogStreams", "logs:DescribeLogGroups", "logs:CreateLogStream",
                        "logs:CreateLogGroup", "logs:PutRetentionPolicy",
                    ],
                    "Resource": "*",
                },
                { "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "arn:aws:ssm:*:*:parameter/AmazonCloudWatch-*" },
            ])),
        },
    ]
}
