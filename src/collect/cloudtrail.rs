//! Observed usage, read live: the account's trail (CloudTrail `DescribeTrails`, `GetEventSelectors`) and
//! its log files straight from S3 (`<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`;
//! digests live elsewhere and are never read), for the window's days and every region the trail delivered.
//!
//! Files are downloaded with bounded concurrency and gunzipped and parsed record by record on the blocking
//! pool, into one tally per file that joins its day's tally only when the whole file was read: a corrupt or
//! truncated file is skipped with a warning naming it, never half-counted. What was read is remembered per
//! trail, account, region and day (with the tally), so a daily run reads only the files delivered since.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_config::SdkConfig;
use futures::StreamExt;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::aws::error_sentence;
use super::cache::Cache;
use crate::arn::RoleArn;
use crate::usage::{Coverage, Tally, record, role_key};
use crate::{Error, Result};

/// What to read and how.
#[derive(Debug, Clone)]
pub struct TrailOptions {
    /// The trail's name or ARN; `None` picks the account's multi-region trail.
    pub trail: Option<String>,
    /// The window (whole UTC days from `from`'s to `to`'s).
    pub from: Timestamp,
    pub to: Timestamp,
    /// Read every file again, ignoring what the cache remembers.
    pub refresh: bool,
    /// Downloads in flight at once.
    pub concurrency: usize,
    pub cache: Cache,
    /// The account of the credentials in use (the cache's key).
    pub caller: String,
}

/// The trail the files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub home_region: String,
    pub multi_region: bool,
    /// Log files are encrypted with this KMS key (reading them needs `kms:Decrypt` on it).
    pub kms_key: Option<String>,
}

/// Progress of a read: files and bytes listed, then each file done.
pub trait Progress: Sync {
    fn listed(&self, files: u64, bytes: u64);
    fn file_done(&self, bytes: u64);
}

/// What was read: the trail, what it can see, the tally of the roles in scope, and warnings (files skipped).
#[derive(Debug)]
pub struct Read {
    pub trail: Trail,
    pub coverage: Coverage,
    pub tally: Tally,
    pub files_read: u64,
    pub bytes_read: u64,
    pub warnings: Vec<String>,
}

/// One day of one region, as remembered between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DayEntry {
    /// The roles (`ACCOUNT:NAME`) the tally counts: a run with a role not among them reads the day again.
    roles: BTreeSet<String>,
    /// The objects already counted.
    keys: BTreeSet<String>,
    tally: Tally,
}

/// Reads the trail's log files for the window and tallies the calls of `roles`.
pub async fn read(
    sdk: &SdkConfig,
    account: &str,
    roles: &[RoleArn],
    options: &TrailOptions,
    progress: &dyn Progress,
) -> Result<Read> {
    let cloudtrail = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(sdk).interceptor(super::aws::RetryNotice).build(),
    );
    let trail = find_trail(&cloudtrail, options.trail.as_deref(), sdk).await?;
    let mut warnings = Vec::new();
    let coverage = match coverage(&cloudtrail, &trail.arn).await {
        Ok(c) => c,
        Err(e) => {
            warnings.push(format!(
                "cannot read the event selectors of trail {} ({e}); observed usage narrows nothing, since what the \
                 trail records is unknown",
                trail.name
            ));
            Coverage::default()
        }
    };
    let s3 = s3_client(sdk, &trail.home_region);
    let scope: BTreeSet<String> = roles.iter().map(role_key).collect();
    let base = format!(
        "{}AWSLogs/{account}/CloudTrail/",
        trail.prefix.as_deref().map(|p| format!("{p}/")).unwrap_or_default()
    );
    let regions = list_prefixes(&s3, &trail.bucket, &base).await.map_err(|e| s3_error(&trail, &base, e))?;
    let days = days(options.from, options.to);

    // What each (region, day) already holds, and what is new there.
    let mut entries: BTreeMap<(String, Date), DayEntry> = BTreeMap::new();
    let mut to_read: Vec<(String, Date, String, u64)> = Vec::new();
    let cache_parts =
        |region: &str| vec!["cloudtrail".to_string(), trail.arn.clone(), account.to_string(), region.to_string()];
    // The day folders are listed concurrently (a month of 17 regions is 500 listings), bounded like downloads.
    let folders: Vec<(String, Date)> = regions.iter().flat_map(|r| days.iter().map(move |d| (r.clone(), *d))).collect();
    let listings: Vec<_> = futures::stream::iter(folders)
        .map(|(region, day)| {
            let (s3, bucket) = (s3.clone(), trail.bucket.clone());
            let prefix = format!("{base}{region}/{}/", day.strftime("%Y/%m/%d"));
            async move {
                let objects = list_objects(&s3, &bucket, &prefix).await;
                (region, day, prefix, objects)
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for (region, day, prefix, objects) in listings {
        let parts = cache_parts(&region);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let cached: Option<DayEntry> =
            (!options.refresh).then(|| options.cache.read(&options.caller, &parts, &day.to_string())).flatten();
        let entry = cached
            .filter(|e| e.roles.is_superset(&scope))
            .unwrap_or_else(|| DayEntry { roles: scope.clone(), ..DayEntry::default() });
        for (key, size) in objects.map_err(|e| s3_error(&trail, &prefix, e))? {
            if key.ends_with(".json.gz") && !entry.keys.contains(&key) {
                to_read.push((region.clone(), day, key, size));
            }
        }
        entries.insert((region, day), entry);
    }
    progress.listed(to_read.len() as u64, to_read.iter().map(|f| f.3).sum());

    let scope = Arc::new(scope);
    let (mut files_read, mut bytes_read) = (0, 0);
    let bucket = trail.bucket.clone();
    // Parsing holds an inflated file: as many at once as there are cores, however many downloads are in flight.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parsers = Arc::new(tokio::sync::Semaphore::new(cores));
    let mut results = futures::stream::iter(to_read)
        .map(|(region, day, key, size)| {
            let (s3, bucket, scope, parsers) = (s3.clone(), bucket.clone(), scope.clone(), parsers.clone());
            async move {
                let result = read_file(&s3, &bucket, &key, scope, &parsers).await;
                (region, day, key, size, result)
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some((region, day, key, size, result)) = results.next().await {
        progress.file_done(size);
        match result {
            Ok(tally) => {
                let entry = entries.entry((region, day)).or_default();
                entry.tally.merge(tally);
                entry.keys.insert(key);
                files_read += 1;
                bytes_read += size;
            }
            Err(why) => warnings.push(format!("skipped s3://{bucket}/{key}: {why}")),
        }
    }
    drop(results);

    let mut tally = Tally::default();
    for ((region, day), entry) in entries {
        let parts = cache_parts(&region);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        options.cache.write(&options.caller, &parts, &day.to_string(), &entry);
        tally.merge(entry.tally);
    }
    tally.retain_roles(&scope);
    Ok(Read { trail, coverage, tally, files_read, bytes_read, warnings })
}

/// Downloads one file and tallies it on the blocking pool; `Err` says why it was skipped.
async fn read_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    scope: Arc<BTreeSet<String>>,
    parsers: &tokio::sync::Semaphore,
) -> Result<Tally, String> {
    let object = s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| error_sentence(&e))?;
    let bytes = object.body.collect().await.map_err(|e| format!("the download broke off ({e})"))?.into_bytes();
    let _parser = parsers.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        record::read_gzipped_log(&bytes, &mut |r| tally.add(&r, &scope))
            .map_err(|e| format!("corrupt or truncated log file ({e})"))?;
        Ok(tally)
    })
    .await
    .map_err(|e| format!("the parser stopped ({e})"))?
}

/// The trail named, or the account's multi-region trail, or one in this region.
async fn find_trail(client: &aws_sdk_cloudtrail::Client, wanted: Option<&str>, sdk: &SdkConfig) -> Result<Trail> {
    let out = client.describe_trails().include_shadow_trails(true).send().await.map_err(|e| {
        Error::aws(format!(
            "cannot list the account's CloudTrail trails (cloudtrail:DescribeTrails: {}); grant it, or pass --trail",
            error_sentence(&e)
        ))
        .because(e)
    })?;
    let mut trails: Vec<Trail> = out
        .trail_list()
        .iter()
        .filter_map(|t| {
            Some(Trail {
                name: t.name()?.to_string(),
                arn: t.trail_arn()?.to_string(),
                bucket: t.s3_bucket_name()?.to_string(),
                prefix: t.s3_key_prefix().filter(|p| !p.is_empty()).map(|p| p.trim_end_matches('/').to_string()),
                home_region: t.home_region()?.to_string(),
                multi_region: t.is_multi_region_trail().unwrap_or(false),
                kms_key: t.kms_key_id().map(str::to_string),
            })
        })
        .collect();
    trails.dedup_by(|a, b| a.arn == b.arn);
    let names = || trails.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
    match wanted {
        Some(w) => trails.iter().find(|t| t.name == w || t.arn == w).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "no trail {w:?} delivers to S3 in this account; trails: {}",
                if trails.is_empty() { "(none)".to_string() } else { names() }
            ))
        }),
        None => {
            let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
            trails
                .iter()
                .find(|t| t.multi_region)
                .or_else(|| trails.iter().find(|t| t.home_region == region))
                .or(trails.first())
                .cloned()
                .ok_or_else(|| {
                    Error::aws(
                        "the account has no CloudTrail trail delivering to S3; create one that logs management events \
                         (aws cloudtrail create-trail --is-multi-region-trail), or pass --trail",
                    )
                })
        }
    }
}

/// What the trail records: management events, and the services whose data events it selects.
async fn coverage(client: &aws_sdk_cloudtrail::Client, trail_arn: &str) -> Result<Coverage, String> {
    let out = client
        .get_event_selectors()
        .trail_name(trail_arn)
        .send()
        .await
        .map_err(|e| format!("cloudtrail:GetEventSelectors: {}", error_sentence(&e)))?;
    let mut coverage = Coverage::default();
    for s in out.event_selectors() {
        let all = s.read_write_type().is_none_or(|t| t.as_str() == "All");
        if s.include_management_events().unwrap_or(true) && all {
            coverage.management = true;
        }
        for r in s.data_resources() {
            if let Some(service) = r.r#type().and_then(data_service) {
                coverage.data_services.insert(service);
            }
        }
    }
    for s in out.advanced_event_selectors() {
        let equals = |field: &str| -> Vec<String> {
            s.field_selectors().iter().filter(|f| f.field() == field).flat_map(|f| f.equals().to_vec()).collect()
        };
        let category = equals("eventCategory");
        let read_only = equals("readOnly");
        if category.iter().any(|c| c == "Management") && read_only.is_empty() {
            coverage.management = true;
        }
        if category.iter().any(|c| c == "Data") {
            coverage.data_services.extend(equals("resources.type").iter().filter_map(|t| data_service(t)));
        }
    }
    Ok(coverage)
}

/// `AWS::S3::Object` -> `s3`, `AWS::Lambda::Function` -> `lambda`, `AWS::DynamoDB::Table` -> `dynamodb`.
fn data_service(resource_type: &str) -> Option<String> {
    let service = resource_type.strip_prefix("AWS::")?.split("::").next()?;
    Some(service.to_ascii_lowercase())
}

fn s3_client(sdk: &SdkConfig, region: &str) -> aws_sdk_s3::Client {
    // A local or S3-compatible endpoint (AWS_ENDPOINT_URL_S3) is addressed by path: bucket names are not
    // host names there.
    let custom =
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .force_path_style(custom)
        .interceptor(super::aws::RetryNotice)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

type S3Error = aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error>;

fn s3_error(trail: &Trail, prefix: &str, e: S3Error) -> Error {
    let kms = trail.kms_key.as_ref().map(|k| format!(" (and kms:Decrypt on {k})")).unwrap_or_default();
    Error::aws(format!(
        "cannot list s3://{}/{prefix} (s3:ListBucket: {}); grant s3:ListBucket and s3:GetObject on the trail's \
         bucket{kms}",
        trail.bucket,
        error_sentence(&e)
    ))
    .because(e)
}

/// The "directories" directly under `prefix` (the regions under `.../CloudTrail/`), every page.
async fn list_prefixes(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token)
            .send()
            .await?;
        for p in page.common_prefixes() {
            if let Some(name) = p.prefix().and_then(|p| p.strip_prefix(prefix)).map(|p| p.trim_end_matches('/')) {
                out.push(name.to_string());
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            return Ok(out);
        }
    }
}

/// Every object under `prefix`, with its size, every page.
async fn list_objects(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, S3Error> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token).send().await?;
        for o in page.contents() {
            if let Some(key) = o.key() {
                out.push((key.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            return Ok(out);
        }
    }
}

/// Every UTC day from `from`'s to `to`'s.
fn days(from: Timestamp, to: Timestamp) -> Vec<Date> {
    let (first, last) = (from.to_zoned(jiff::tz::TimeZone::UTC).date(), to.to_zoned(jiff::tz::TimeZone::UTC).date());
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        out.push(day);
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_a_window_and_data_services() {
        let d = days("2026-11-30T23:00:00Z".parse().unwrap(), "2026-12-02T01:00:00Z".parse().unwrap());
        assert_eq!(d.iter().map(ToString::to_string).collect::<Vec<_>>(), ["2026-11-30", "2026-12-01", "2026-12-02"]);
        assert_eq!(data_service("AWS::S3::Object").as_deref(), Some("s3"));
        assert_eq!(data_service("AWS::DynamoDB::Table").as_deref(), Some("dynamodb"));
        assert_eq!(data_service("nope"), None);
    }
}
