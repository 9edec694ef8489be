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
