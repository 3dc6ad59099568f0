//! CloudTrail log files, read record by record: a file is `{"Records": [...]}`, gzipped. Each record is
//! parsed into the few fields attribution needs and handed to a callback, so only the file's text and one
//! record are held at a time. Fields whose shape varies by service (`requestParameters`,
//! `responseElements`) are read leniently: only the keys used here are kept, as JSON values.

use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One CloudTrail event, slimmed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Record {
    pub event_time: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    pub error_code: Option<String>,
    pub user_identity: Option<UserIdentity>,
    pub request_parameters: Option<Parameters>,
    pub response_elements: Option<Elements>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub arn: Option<String>,
    pub access_key_id: Option<String>,
    pub user_name: Option<String>,
    pub identity_provider: Option<String>,
    pub invoked_by: Option<String>,
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionContext {
    pub session_issuer: Option<SessionIssuer>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionIssuer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub arn: Option<String>,
}

/// The request parameters STS events carry; anything else in `requestParameters` is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Parameters {
    pub role_arn: Option<Value>,
    pub tags: Option<Value>,
}

/// The response elements STS events carry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Elements {
    pub credentials: Option<Value>,
    pub provider: Option<Value>,
    pub subject_from_web_identity_token: Option<Value>,
}

impl Record {
    pub fn request_role_arn(&self) -> Option<&str> {
        self.request_parameters.as_ref()?.role_arn.as_ref()?.as_str()
    }

    /// `responseElements.credentials.accessKeyId`: the temporary key STS issued.
    pub fn issued_key(&self) -> Option<&str> {
        self.response_elements.as_ref()?.credentials.as_ref()?.get("accessKeyId")?.as_str()
    }

    /// A session tag passed to `AssumeRole` (`requestParameters.tags`, a list of `{key, value}`).
    pub fn tag(&self, key: &str) -> Option<&str> {
        let tags = self.request_parameters.as_ref()?.tags.as_ref()?.as_array()?;
        tags.iter().find(|t| t.get("key").and_then(Value::as_str) == Some(key))?.get("value")?.as_str()
    }
}

/// Reads one log file's JSON, calling `on_record` for each record in order; returns how many there were. An
/// error (truncated or malformed JSON) means the file is unusable: callers drop what it gave.
pub fn read_log(text: &[u8], on_record: &mut dyn FnMut(Record)) -> Result<u64, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let count = LogFile { on_record }.deserialize(&mut de)?;
    de.end()?;
    Ok(count)
}

/// Gunzips and reads one `.json.gz` log file. The file is inflated into one buffer first: parsing a slice
/// is several times faster than parsing a reader byte by byte, and a log file is at most tens of MB, read by
/// as many workers as there are cores.
pub fn read_gzipped_log(bytes: &[u8], on_record: &mut dyn FnMut(Record)) -> Result<u64, serde_json::Error> {
    let mut text = Vec::with_capacity(bytes.len().saturating_mul(8));
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text).map_err(serde_json::Error::io)?;
    read_log(&text, on_record)
}

struct LogFile<'a> {
    on_record: &'a mut dyn FnMut(Record),
}

impl<'de> DeserializeSeed<'de> for LogFile<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogFile<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail log file: {\"Records\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut count = None;
        let on_record = self.on_record;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                count = Some(map.next_value_seed(Records { on_record: &mut *on_record })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        count.ok_or_else(|| serde::de::Error::missing_field("Records"))
    }
}

struct Records<'a> {
    on_record: &'a mut dyn FnMut(Record),
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of CloudTrail records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(record) = seq.next_element::<Record>()? {
            (self.on_record)(record);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_one_by_one_and_skips_what_it_does_not_need() {
        let text = r#"{"Records":[
            {"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAXX",
              "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/app"},
              "attributes":{"creationDate":"2026-12-01T10:00:00Z","mfaAuthenticated":"false"}}},
             "eventTime":"2026-12-01T10:00:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject",
             "requestParameters":{"bucketName":"b","tags":{"odd":"shape"},"roleArn":7},
             "responseElements":null,"resources":[{"ARN":"arn:aws:s3:::b/k"}]},
            {"eventSource":"sts.amazonaws.com","eventName":"AssumeRole",
             "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/app",
               "tags":[{"key":"kubernetes-namespace","value":"shop"}]},
             "responseElements":{"credentials":{"accessKeyId":"ASIAYY","expiration":"x"}}}
        ],"other":{"ignored":[1,2,3]}}"#;
        let mut seen = Vec::new();
        let n = read_log(text.as_bytes(), &mut |r| seen.push(r)).unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen[0].event_name.as_deref(), Some("GetObject"));
        let issuer = seen[0].user_identity.as_ref().unwrap().session_context.as_ref().unwrap().session_issuer.as_ref();
        assert_eq!(issuer.unwrap().arn.as_deref(), Some("arn:aws:iam::111122223333:role/app"));
        assert_eq!(seen[0].request_role_arn(), None, "a roleArn of another shape is not a role ARN");
        assert_eq!(seen[1].tag("kubernetes-namespace"), Some("shop"));
        assert_eq!(seen[1].issued_key(), Some("ASIAYY"));
    }

    #[test]
    fn broken_files_are_errors() {
        for bad in ["{\"Records\":[{\"eventName\":\"GetObject\"}", "[]", "{\"Records\":[1]}", "{}", "garbage"] {
            assert!(read_log(bad.as_bytes(), &mut |_| {}).is_err(), "{bad}");
        }
        assert!(read_gzipped_log(b"\x1f\x8b\x08\x00not really gzip", &mut |_| {}).is_err());
    }
}
