//! HubSpot's wire formats for the endpoints this package calls: paths, request bodies and the
//! success answers. The API path lives here and nowhere else, so that a move to HubSpot's
//! date-versioned paths touches one module.

use serde_json::{json, Value as Json};

use crate::email::encode_path_segment;

/// v1 single upsert; the email follows as one percent-encoded segment.
const V1_UPSERT_PATH: &str = "/contacts/v1/contact/createOrUpdate/email/";

/// What a successful upsert tells: the contact's id and whether it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertOutcome {
    pub vid: i64,
    pub is_new: bool,
}

/// The v1 upsert URL for `email` under `base_url` (which has no trailing `/`).
pub fn v1_upsert_url(base_url: &str, email: &str) -> String {
    format!("{base_url}{V1_UPSERT_PATH}{}", encode_path_segment(email))
}

/// `{"properties":[{"property":name,"value":text},...]}`.
pub fn v1_upsert_body(properties: &[(String, String)]) -> Vec<u8> {
    let list: Vec<Json> = properties
        .iter()
        .map(|(name, value)| json!({"property": name, "value": value}))
        .collect();
    serde_json::to_vec(&json!({ "properties": list })).expect("strings always serialise")
}

/// Reads `{"vid": 3234574, "isNew": false}`; `None` when the answer is not of that shape.
pub fn parse_v1_upsert(body: &[u8]) -> Option<UpsertOutcome> {
    let json: Json = serde_json::from_slice(body).ok()?;
    Some(UpsertOutcome {
        vid: json.get("vid")?.as_i64()?,
        is_new: json.get("isNew")?.as_bool()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_the_email_in_one_segment() {
        assert_eq!(
            v1_upsert_url("https://api.hubapi.com", "a+b/c?d#e@x.io"),
            "https://api.hubapi.com/contacts/v1/contact/createOrUpdate/email/a%2Bb%2Fc%3Fd%23e%40x.io"
        );
    }

    #[test]
    fn body_is_the_documented_list_shape() {
        let body = v1_upsert_body(&[
            ("firstname".into(), "Ada \"A\"".into()),
            ("x".into(), "".into()),
        ]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"properties":[{"property":"firstname","value":"Ada \"A\""},{"property":"x","value":""}]}"#
        );
        assert_eq!(v1_upsert_body(&[]), br#"{"properties":[]}"#);
    }

    #[test]
    fn parses_success_and_refuses_other_shapes() {
        assert_eq!(
            parse_v1_upsert(br#"{"vid": 3234574, "isNew": false}"#),
            Some(UpsertOutcome {
                vid: 3234574,
                is_new: false
            })
        );
        assert_eq!(
            parse_v1_upsert(br#"{"vid": "3234574", "isNew": false}"#),
            None
        );
        assert_eq!(parse_v1_upsert(br#"{"vid": 1}"#), None);
        assert_eq!(parse_v1_upsert(b"<html>"), None);
    }
}

/// v3 batch upsert (at most [`V3_BATCH_MAX`] inputs, each identified by email).
const V3_BATCH_UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// The portal's contact property definitions.
const V3_PROPERTIES_PATH: &str = "/crm/v3/properties/contacts";

/// HubSpot's limit of inputs in one batch request.
pub const V3_BATCH_MAX: usize = 100;

/// One record of a batch: the contact's email and its properties as HubSpot text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInput {
    pub email: String,
    pub properties: Vec<(String, String)>,
}

impl BatchInput {
    /// The value this input sets for `name`, if it sets one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a batch answer says of one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResult {
    /// The `objectWriteTraceId` the input was sent with, echoed.
    pub trace_id: Option<String>,
    /// The `email` property in the result, lower-case, when HubSpot echoes it.
    pub email: Option<String>,
    pub vid: i64,
    pub is_new: bool,
}

pub fn v3_batch_upsert_url(base_url: &str) -> String {
    format!("{base_url}{V3_BATCH_UPSERT_PATH}")
}

pub fn v3_properties_url(base_url: &str) -> String {
    format!("{base_url}{V3_PROPERTIES_PATH}")
}

/// `{"inputs":[{"id":email,"idProperty":"email","objectWriteTraceId":trace,"properties":{...}},...]}`.
/// The email goes as the `email` property too (unless the input changes it), so that results
/// name it; `objectWriteTraceId` is what results are matched by.
pub fn v3_batch_upsert_body<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a BatchInput)>,
) -> Vec<u8> {
    let list: Vec<Json> = inputs
        .into_iter()
        .map(|(trace, input)| {
            let mut properties: serde_json::Map<String, Json> = input
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            properties
                .entry("email")
                .or_insert_with(|| Json::String(input.email.clone()));
            json!({
                "id": input.email,
                "idProperty": "email",
                "objectWriteTraceId": trace,
                "properties": properties,
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "inputs": list })).expect("strings always serialise")
}

/// Reads the `results` of a 200 or 207 answer; `None` when the answer is not of that shape.
/// Results come in no particular order.
pub fn parse_v3_batch(body: &[u8]) -> Option<Vec<BatchResult>> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let results = json.get("results")?.as_array()?;
    results
        .iter()
        .map(|r| {
            let vid = match r.get("id")? {
                Json::String(s) => s.parse().ok()?,
                other => other.as_i64()?,
            };
            let properties = r.get("properties");
            Some(BatchResult {
                trace_id: r
                    .get("objectWriteTraceId")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                email: properties
                    .and_then(|p| p.get("email"))
                    .and_then(Json::as_str)
                    .map(str::to_lowercase),
                vid,
                is_new: r.get("new").and_then(Json::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batch_body_shape() {
        let a = BatchInput {
            email: "a@x.io".into(),
            properties: vec![("firstname".into(), "A".into())],
        };
        let b = BatchInput {
            email: "b@x.io".into(),
            properties: vec![("email".into(), "new-b@x.io".into())],
        };
        assert_eq!(
            String::from_utf8(v3_batch_upsert_body([("0", &a), ("7", &b)])).unwrap(),
            concat!(
                r#"{"inputs":[{"id":"a@x.io","idProperty":"email","objectWriteTraceId":"0","properties":{"email":"a@x.io","firstname":"A"}},"#,
                r#"{"id":"b@x.io","idProperty":"email","objectWriteTraceId":"7","properties":{"email":"new-b@x.io"}}]}"#
            )
        );
        assert_eq!(
            v3_batch_upsert_url("https://h"),
            "https://h/crm/v3/objects/contacts/batch/upsert"
        );
        assert_eq!(b.get("email"), Some("new-b@x.io"));
        assert_eq!(a.get("email"), None);
    }

    #[test]
    fn batch_results_are_read_with_trace_id_and_email() {
        let body = br#"{"status":"COMPLETE","results":[
            {"id":"1002","properties":{"email":"B@x.io"},"new":false},
            {"id":"1001","objectWriteTraceId":"3","properties":{"firstname":"A"},"createdAt":"2024-08-15T17:09:13.648Z","new":true}],
            "startedAt":"x","completedAt":"y"}"#;
        assert_eq!(
            parse_v3_batch(body).unwrap(),
            vec![
                BatchResult {
                    trace_id: None,
                    email: Some("b@x.io".into()),
                    vid: 1002,
                    is_new: false
                },
                BatchResult {
                    trace_id: Some("3".into()),
                    email: None,
                    vid: 1001,
                    is_new: true
                },
            ]
        );
        assert_eq!(parse_v3_batch(br#"{"results":[{"id":"x"}]}"#), None);
        assert_eq!(parse_v3_batch(br#"{"status":"COMPLETE"}"#), None);
    }
}
