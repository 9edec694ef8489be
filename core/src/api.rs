//! HubSpot's wire formats for the endpoints this package calls: paths, request bodies and the
//! success answers. The API paths live here and nowhere else: the legacy ones (v1 single upsert,
//! v3 batch upsert and properties) and HubSpot's date-versioned ones (`/crm/objects/2026-09/...`).

use serde_json::{json, Value as Json};

use crate::email::encode_path_segment;
use crate::error::{Error, Result};

/// Which of HubSpot's API versions a client calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiVersion {
    /// The numbered paths: v1 single upsert, v3 batch upsert and properties (unsupported by
    /// HubSpot from September 2027).
    Legacy,
    /// A date version, `YYYY-MM`: batch upsert and properties under it, and single upserts as
    /// a batch of one (HubSpot has no date-versioned single upsert).
    Dated(String),
}

/// A CRM object type as HubSpot's paths name it: `contacts`, `companies`, `deals`, `tickets`,
/// or a custom object by its name or type id (`2-123456`). Standard objects' type ids (`0-1`,
/// `0-2`...) are read as their names, so that one object is never two.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectType(String);

impl Default for ObjectType {
    fn default() -> Self {
        ObjectType("contacts".to_owned())
    }
}

impl ObjectType {
    pub fn parse(text: &str) -> Result<ObjectType> {
        let text = text.trim();
        let standard = match text.to_ascii_lowercase().as_str() {
            "contacts" | "contact" | "0-1" => Some("contacts"),
            "companies" | "company" | "0-2" => Some("companies"),
            "deals" | "deal" | "0-3" => Some("deals"),
            "tickets" | "ticket" | "0-5" => Some("tickets"),
            _ => None,
        };
        if let Some(name) = standard {
            return Ok(ObjectType(name.to_owned()));
        }
        let path_safe = !text.is_empty()
            && text.len() <= 100
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !path_safe {
            return Err(Error::InvalidInput(format!(
                "an object type is contacts, companies, deals, tickets, or a custom object's name                  or type id (such as 2-123456), got {text:?}"
            )));
        }
        Ok(ObjectType(text.to_owned()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// How one record of the type is named in messages: "contact", "company", or "record of
    /// cars" for a custom object.
    pub(crate) fn one(&self) -> String {
        match self.0.as_str() {
            "contacts" => "contact".into(),
            "companies" => "company".into(),
            "deals" => "deal".into(),
            "tickets" => "ticket".into(),
            other => format!("record of {other}"),
        }
    }

    pub(crate) fn is_contacts(&self) -> bool {
        self.0 == "contacts"
    }
}

/// The first date version HubSpot published.
pub(crate) const OLDEST_DATED: &str = "2026-03";
/// The newest date version this package knows: bulk runs use it unless told otherwise.
pub(crate) const NEWEST_DATED: &str = "2026-09";

impl ApiVersion {
    /// Reads `"legacy"` or a date version `YYYY-MM` no older than [`OLDEST_DATED`].
    pub fn parse(text: &str) -> Result<ApiVersion> {
        if text == "legacy" {
            return Ok(ApiVersion::Legacy);
        }
        let b = text.as_bytes();
        let shaped = b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit())
            && matches!(
                &text[5..],
                "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
            );
        if !shaped {
            return Err(Error::InvalidInput(format!(
                "api_version must be 'legacy' or a date version such as '{NEWEST_DATED}' (YYYY-MM), got '{text}'"
            )));
        }
        if text < OLDEST_DATED {
            return Err(Error::InvalidInput(format!(
                "api_version '{text}' is older than HubSpot's first date version, {OLDEST_DATED}"
            )));
        }
        Ok(ApiVersion::Dated(text.to_owned()))
    }

    /// How the setting is written: `legacy` or the date.
    pub(crate) fn name(&self) -> &str {
        match self {
            ApiVersion::Legacy => "legacy",
            ApiVersion::Dated(date) => date,
        }
    }

    /// `/crm/v3/objects/{object}/batch/{action}`, or the date version's.
    fn batch_path(&self, object: &ObjectType, action: &str) -> String {
        let object = object.name();
        match self {
            ApiVersion::Legacy => format!("/crm/v3/objects/{object}/batch/{action}"),
            ApiVersion::Dated(date) => format!("/crm/objects/{date}/{object}/batch/{action}"),
        }
    }

    pub(crate) fn batch_upsert_path(&self, object: &ObjectType) -> String {
        self.batch_path(object, "upsert")
    }

    /// Where records are archived by HubSpot id.
    pub(crate) fn batch_archive_path(&self, object: &ObjectType) -> String {
        self.batch_path(object, "archive")
    }

    /// Where the records of a list of ids are read (to learn which exist, and their values).
    pub(crate) fn batch_read_path(&self, object: &ObjectType) -> String {
        self.batch_path(object, "read")
    }

    /// Where records are updated by HubSpot's own id (never created).
    pub(crate) fn batch_update_path(&self, object: &ObjectType) -> String {
        self.batch_path(object, "update")
    }

    /// The associations API's `tail` between records of `from` and `to`: the client's date
    /// version (`/crm/associations/2026-09/...`), or v4.
    pub(crate) fn associations_path(
        &self,
        from: &ObjectType,
        to: &ObjectType,
        tail: &str,
    ) -> String {
        let (from, to) = (from.name(), to.name());
        match self {
            ApiVersion::Legacy => format!("/crm/v4/associations/{from}/{to}/{tail}"),
            ApiVersion::Dated(date) => format!("/crm/associations/{date}/{from}/{to}/{tail}"),
        }
    }

    /// Where records of `from` are given the default association with records of `to`, 100
    /// per request.
    pub(crate) fn associate_path(&self, from: &ObjectType, to: &ObjectType) -> String {
        self.associations_path(from, to, "batch/associate/default")
    }

    pub(crate) fn properties_path(&self, object: &ObjectType) -> String {
        let object = object.name();
        match self {
            ApiVersion::Legacy => format!("/crm/v3/properties/{object}"),
            ApiVersion::Dated(date) => format!("/crm/properties/{date}/{object}"),
        }
    }

    /// Where the account's details are read: `portalId`, the portal a token belongs to. The
    /// account information API's newest date version is 2026-03 (HubSpot's reference lists it
    /// as the latest): every later date reads it there.
    pub(crate) fn account_path(&self) -> String {
        match self {
            ApiVersion::Legacy => "/account-info/v3/details".to_owned(),
            ApiVersion::Dated(_) => format!("/account-info/{OLDEST_DATED}/details"),
        }
    }

    /// The path a single upsert of `email` goes to (for logs: the email is not in it).
    pub(crate) fn single_upsert_path(&self) -> String {
        match self {
            ApiVersion::Legacy => format!("{V1_UPSERT_PATH}{{email}}"),
            dated => dated.batch_upsert_path(&ObjectType::default()),
        }
    }
}

/// v1 single upsert; the email follows as one percent-encoded segment.
const V1_UPSERT_PATH: &str = "/contacts/v1/contact/createOrUpdate/email/";

/// A contact that landed: its id and whether the write created it (one upsert, or one record
/// of a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landed {
    pub vid: i64,
    pub is_new: bool,
}

/// The v1 upsert URL for `email` under `base_url` (which has no trailing `/`).
pub(crate) fn v1_upsert_url(base_url: &str, email: &str) -> String {
    format!("{base_url}{V1_UPSERT_PATH}{}", encode_path_segment(email))
}

/// `{"properties":[{"property":name,"value":text},...]}`.
pub(crate) fn v1_upsert_body(properties: &[(String, String)]) -> Vec<u8> {
    let list: Vec<Json> = properties
        .iter()
        .map(|(name, value)| json!({"property": name, "value": value}))
        .collect();
    serde_json::to_vec(&json!({ "properties": list })).expect("strings always serialise")
}

/// Reads `{"vid": 3234574, "isNew": false}`; `None` when the answer is not of that shape.
pub(crate) fn parse_v1_upsert(body: &[u8]) -> Option<Landed> {
    let json: Json = serde_json::from_slice(body).ok()?;
    Some(Landed {
        vid: json.get("vid")?.as_i64()?,
        is_new: json.get("isNew")?.as_bool()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associations_go_to_their_own_api_and_their_answers_are_read() {
        let (contacts, companies) = (ObjectType::default(), ObjectType::parse("0-2").unwrap());
        assert_eq!(
            ApiVersion::parse("2026-09")
                .unwrap()
                .associate_path(&contacts, &companies),
            "/crm/associations/2026-09/contacts/companies/batch/associate/default"
        );
        assert_eq!(
            ApiVersion::Legacy.associate_path(&contacts, &companies),
            "/crm/v4/associations/contacts/companies/batch/associate/default"
        );
        let body: Json = serde_json::from_slice(&associate_body(&[(1, 2), (3, 4)])).unwrap();
        assert_eq!(
            body["inputs"][1],
            json!({"from": {"id": "3"}, "to": {"id": "4"}})
        );
        let answer = br#"{"status":"COMPLETE","results":[{"from":{"id":"1"},"to":{"id":"2"},
            "associationSpec":{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":1}}],
            "numErrors":1,"errors":[{"status":"error","category":"VALIDATION_ERROR",
            "message":"No company with id 4 exists","context":{"ids":["4"]}}]}"#;
        assert_eq!(parse_associated(answer), Some(vec![(1, 2)]));
        assert_eq!(parse_associated(b"{}"), None);
        let errors = input_errors(answer);
        assert_eq!(ids_named(&errors[0].1), vec![4]);
        // Without a context, the ids in the message.
        assert_eq!(
            ids_named(br#"{"message":"ids 12 and 13 are unknown"}"#),
            vec![12, 13]
        );
        assert_eq!(ObjectType::parse("companies").unwrap().one(), "company");
    }

    #[test]
    fn labels_are_read_and_labelled_associations_made_and_removed() {
        let labels = parse_labels(
            br#"{"results":[{"category":"HUBSPOT_DEFINED","typeId":279,"label":null},
            {"category":"USER_DEFINED","typeId":36,"label":"Billing contact"}]}"#,
        )
        .unwrap();
        assert_eq!(labels[0].label, None);
        assert_eq!(labels[1].label.as_deref(), Some("Billing contact"));
        let body: Json = serde_json::from_slice(&labelled_body(&[(1, 2)], &labels[1])).unwrap();
        assert_eq!(
            body["inputs"][0]["types"],
            json!([{"associationCategory": "USER_DEFINED", "associationTypeId": 36}])
        );
        let labelled = br#"{"status":"COMPLETE","results":[{"fromObjectTypeId":"0-1",
            "fromObjectId":1,"toObjectTypeId":"0-2","toObjectId":2,"labels":["Billing contact"]}]}"#;
        assert_eq!(parse_associated(labelled), Some(vec![(1, 2)]));
        let gone: Json =
            serde_json::from_slice(&unassociate_body(&[(1, 2), (1, 3), (4, 5)])).unwrap();
        assert_eq!(
            gone["inputs"],
            json!([{"from": {"id": "1"}, "to": [{"id": "2"}, {"id": "3"}]},
                   {"from": {"id": "4"}, "to": [{"id": "5"}]}])
        );
        let contacts = ObjectType::default();
        let deals = ObjectType::parse("deals").unwrap();
        assert_eq!(
            ApiVersion::parse("2026-03")
                .unwrap()
                .associations_path(&contacts, &deals, "labels"),
            "/crm/associations/2026-03/contacts/deals/labels"
        );
        assert_eq!(ObjectType::parse("2-99").unwrap().one(), "record of 2-99");
    }

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
            Some(Landed {
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

/// HubSpot's limit of inputs in one batch request.
pub const V3_BATCH_MAX: usize = 100;

/// The property HubSpot's own record id is read and written under: records addressed by it go
/// to batch update, never to upsert.
pub const OBJECT_ID: &str = "hs_object_id";

/// One record of a batch: the value that identifies the contact (its email, or the value of
/// the run's unique id property) and its properties as HubSpot text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchInput {
    pub id: String,
    pub properties: Vec<(String, String)>,
    /// The keys of the records it is to be associated with, one per association of the run
    /// (empty: none): never sent with it, but part of what a sync state compares.
    pub links: Vec<String>,
}

impl BatchInput {
    /// The value this input sets for `name`, if it sets one.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a batch answer says HubSpot wrote for one input, as it says it (the planner matches it
/// to its records and makes their [`Landed`] outcomes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The `objectWriteTraceId` the input was sent with, echoed.
    pub(crate) trace_id: Option<String>,
    /// The `email` property in the result, lower-case, when HubSpot echoes it.
    pub(crate) email: Option<String>,
    pub(crate) vid: i64,
    pub(crate) is_new: bool,
}

pub(crate) fn batch_upsert_url(
    base_url: &str,
    version: &ApiVersion,
    object: &ObjectType,
) -> String {
    format!("{base_url}{}", version.batch_upsert_path(object))
}

pub(crate) fn batch_read_url(base_url: &str, version: &ApiVersion, object: &ObjectType) -> String {
    format!("{base_url}{}", version.batch_read_path(object))
}

pub(crate) fn batch_update_url(
    base_url: &str,
    version: &ApiVersion,
    object: &ObjectType,
) -> String {
    format!("{base_url}{}", version.batch_update_path(object))
}

/// A batch read of the contacts with these ids (values of `id_property`; HubSpot's own ids
/// when it is `hs_object_id`), asking for `properties` (the id property itself, and for
/// email the additional addresses, are always asked for: results are matched by them).
pub(crate) fn v3_batch_read_body<'a>(
    id_property: &str,
    ids: impl IntoIterator<Item = &'a str>,
    properties: &[String],
) -> Vec<u8> {
    let inputs: Vec<Json> = ids.into_iter().map(|e| json!({ "id": e })).collect();
    let mut asked: Vec<&str> = vec![id_property];
    if id_property == "email" {
        asked.push("hs_additional_emails");
    }
    for p in properties {
        if !asked.contains(&p.as_str()) {
            asked.push(p);
        }
    }
    let mut body = json!({ "properties": asked, "inputs": inputs });
    if id_property != OBJECT_ID {
        body["idProperty"] = Json::String(id_property.to_owned());
    }
    serde_json::to_vec(&body).expect("strings always serialise")
}

/// One contact a batch read found: HubSpot's id for it, the id values it is found under
/// (its primary and additional addresses, lower case, when read by email), and the values of
/// the properties asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) object_id: i64,
    pub(crate) ids: Vec<String>,
    pub(crate) values: std::collections::HashMap<String, String>,
}

/// The contacts a batch read by `id_property` found; `None` when the answer is not of that
/// shape. Ids it did not find are in its `errors` (a 207, or a 200 from 2026-09 on), or
/// simply absent.
pub(crate) fn parse_v3_read(body: &[u8], id_property: &str) -> Option<Vec<Found>> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let mut found = Vec::new();
    for r in json.get("results")?.as_array()? {
        let object_id = match r.get("id")? {
            Json::String(s) => s.parse().ok()?,
            other => other.as_i64()?,
        };
        let mut values = std::collections::HashMap::new();
        if let Some(properties) = r.get("properties").and_then(Json::as_object) {
            for (name, value) in properties {
                match value {
                    Json::String(text) => values.insert(name.clone(), text.clone()),
                    Json::Null => values.insert(name.clone(), String::new()),
                    other => values.insert(name.clone(), other.to_string()),
                };
            }
        }
        let ids = match id_property {
            OBJECT_ID => vec![object_id.to_string()],
            "email" => ["email", "hs_additional_emails"]
                .iter()
                .filter_map(|n| values.get(*n))
                .flat_map(|text| text.split(';'))
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
            name => values
                .get(name)
                .map(|v| v.trim().to_owned())
                .into_iter()
                .collect(),
        };
        found.push(Found {
            object_id,
            ids,
            values,
        });
    }
    Some(found)
}

/// A batch archive of these HubSpot ids: `{"inputs": [{"id": "1001"}, ...]}`.
pub(crate) fn archive_body(ids: &[i64]) -> Vec<u8> {
    let inputs: Vec<Json> = ids
        .iter()
        .map(|id| json!({ "id": id.to_string() }))
        .collect();
    serde_json::to_vec(&json!({ "inputs": inputs })).expect("strings always serialise")
}

/// An association label of a pair of object types, as HubSpot's labels list gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationLabel {
    /// `HUBSPOT_DEFINED` or `USER_DEFINED`.
    pub category: String,
    pub type_id: i64,
    /// None for the plain (unlabelled) association type.
    pub label: Option<String>,
}

/// The labels of an answer to the labels list: `{"results": [{"category", "typeId", "label"}]}`.
pub(crate) fn parse_labels(body: &[u8]) -> Option<Vec<AssociationLabel>> {
    let json: Json = serde_json::from_slice(body).ok()?;
    json.get("results")?
        .as_array()?
        .iter()
        .map(|r| {
            Some(AssociationLabel {
                category: r.get("category")?.as_str()?.to_owned(),
                type_id: r.get("typeId")?.as_i64()?,
                label: r.get("label").and_then(Json::as_str).map(str::to_owned),
            })
        })
        .collect()
}

/// The body of a batch of labelled associations: each `(from id, to id)` with `label`.
pub(crate) fn labelled_body(pairs: &[(i64, i64)], label: &AssociationLabel) -> Vec<u8> {
    let types =
        json!([{ "associationCategory": label.category, "associationTypeId": label.type_id }]);
    let inputs: Vec<Json> = pairs
        .iter()
        .map(|(from, to)| {
            json!({ "from": { "id": from.to_string() }, "to": { "id": to.to_string() }, "types": types })
        })
        .collect();
    serde_json::to_vec(&json!({ "inputs": inputs })).expect("strings always serialise")
}

/// The body of a batch archive of associations, each `(from id, to id)` (every association
/// type between them goes): `{"inputs": [{"from": {"id"}, "to": [{"id"}, ...]}]}`.
pub(crate) fn unassociate_body(pairs: &[(i64, i64)]) -> Vec<u8> {
    let mut by_from: Vec<(i64, Vec<Json>)> = Vec::new();
    for &(from, to) in pairs {
        let to = json!({ "id": to.to_string() });
        match by_from.iter_mut().find(|(f, _)| *f == from) {
            Some((_, tos)) => tos.push(to),
            None => by_from.push((from, vec![to])),
        }
    }
    let inputs: Vec<Json> = by_from
        .into_iter()
        .map(|(from, to)| json!({ "from": { "id": from.to_string() }, "to": to }))
        .collect();
    serde_json::to_vec(&json!({ "inputs": inputs })).expect("strings always serialise")
}

/// The body of a batch of default associations, `(from id, to id)` each.
pub(crate) fn associate_body(pairs: &[(i64, i64)]) -> Vec<u8> {
    let inputs: Vec<Json> = pairs
        .iter()
        .map(|(from, to)| json!({ "from": { "id": from.to_string() }, "to": { "id": to.to_string() } }))
        .collect();
    serde_json::to_vec(&json!({ "inputs": inputs })).expect("strings always serialise")
}

/// The `(from id, to id)` pairs an association answer lists as made; `None` when the answer
/// is not of that shape. Inputs it refused are in its `errors` ([`input_errors`]).
pub(crate) fn parse_associated(body: &[u8]) -> Option<Vec<(i64, i64)>> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let id = |side: Option<&Json>| -> Option<i64> {
        match side?.get("id")? {
            Json::String(s) => s.parse().ok(),
            other => other.as_i64(),
        }
    };
    // A default association's result names `from` and `to`; a labelled one's
    // `fromObjectId` and `toObjectId`.
    let number = |v: Option<&Json>| -> Option<i64> {
        match v? {
            Json::String(s) => s.parse().ok(),
            other => other.as_i64(),
        }
    };
    json.get("results")?
        .as_array()?
        .iter()
        .map(|r| {
            let from = id(r.get("from")).or_else(|| number(r.get("fromObjectId")))?;
            let to = id(r.get("to")).or_else(|| number(r.get("toObjectId")))?;
            Some((from, to))
        })
        .collect()
}

/// The record ids an input error names: its `context`'s id lists, else the whole numbers in
/// its message.
pub(crate) fn ids_named(error: &[u8]) -> Vec<i64> {
    let Ok(json) = serde_json::from_slice::<Json>(error) else {
        return Vec::new();
    };
    let mut ids: Vec<i64> = Vec::new();
    if let Some(context) = json.get("context").and_then(Json::as_object) {
        for value in context.values() {
            let listed = value
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(std::slice::from_ref(value));
            ids.extend(listed.iter().filter_map(|v| match v {
                Json::String(s) => s.trim().parse().ok(),
                other => other.as_i64(),
            }));
        }
    }
    if ids.is_empty() {
        if let Some(message) = json.get("message").and_then(Json::as_str) {
            ids.extend(
                message
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|w| !w.is_empty())
                    .filter_map(|w| w.parse::<i64>().ok()),
            );
        }
    }
    ids
}

pub(crate) fn properties_url(base_url: &str, version: &ApiVersion, object: &ObjectType) -> String {
    format!("{base_url}{}", version.properties_path(object))
}

/// The portal id of an account details answer (`portalId`), if it holds a usable one.
pub(crate) fn portal_id(body: &[u8]) -> Option<i64> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("portalId")?.as_i64().filter(|id| *id > 0)
}

/// `{"inputs":[{"id":value,"idProperty":id_property,"objectWriteTraceId":trace,"properties":{...}},...]}`.
/// `objectWriteTraceId` is what results are matched by. The email is never added as the `email`
/// property: where the id matches a contact through one of its additional addresses, that would
/// make it the contact's primary one. Only a record that sets `email` itself sends it.
pub fn v3_batch_upsert_body<'a>(
    id_property: &str,
    inputs: impl IntoIterator<Item = (&'a str, &'a BatchInput)>,
) -> Vec<u8> {
    let list: Vec<Json> = inputs
        .into_iter()
        .map(|(trace, input)| {
            json!({
                "id": input.id,
                "idProperty": id_property,
                "objectWriteTraceId": trace,
                "properties": properties_json(input),
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "inputs": list })).expect("strings always serialise")
}

/// `{"inputs":[{"id":object_id,"objectWriteTraceId":trace,"properties":{...}},...]}`: a batch
/// update by HubSpot's own ids (`idProperty` left out, as HubSpot wants for them).
pub(crate) fn v3_batch_update_body<'a>(
    inputs: impl IntoIterator<Item = (&'a str, i64, &'a BatchInput)>,
) -> Vec<u8> {
    let list: Vec<Json> = inputs
        .into_iter()
        .map(|(trace, object_id, input)| {
            json!({
                "id": object_id.to_string(),
                "objectWriteTraceId": trace,
                "properties": properties_json(input),
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "inputs": list })).expect("strings always serialise")
}

fn properties_json(input: &BatchInput) -> serde_json::Map<String, Json> {
    input
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect()
}

/// The per-input errors of a 200 or 207 answer (`errors[]`: HubSpot's 2026-03 batch upsert
/// may answer 207 with them, 2026-09 puts them in its 200 answer), each with the
/// `objectWriteTraceId` of the input it is about, when it says, and the error itself as JSON
/// text of the shape of a 400's body (a `category`, a `message`, nested `errors[]` with their
/// codes and `context.propertyName`).
pub(crate) fn input_errors(body: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let Ok(json) = serde_json::from_slice::<Json>(body) else {
        return Vec::new();
    };
    let Some(errors) = json.get("errors").and_then(Json::as_array) else {
        return Vec::new();
    };
    errors
        .iter()
        .filter(|e| e.is_object())
        .map(|e| {
            let trace = e
                .get("context")
                .and_then(|c| c.get("objectWriteTraceId"))
                .and_then(|t| t.as_array().and_then(|a| a.first()).or(Some(t)))
                .and_then(|t| match t {
                    Json::String(s) => Some(s.clone()),
                    Json::Number(n) => Some(n.to_string()),
                    _ => None,
                });
            let text = serde_json::to_vec(e).unwrap_or_default();
            (trace, text)
        })
        .collect()
}

/// Reads the `results` of a 200 or 207 answer; `None` when the answer is not of that shape.
/// Results come in no particular order.
pub(crate) fn parse_v3_batch(body: &[u8]) -> Option<Vec<Written>> {
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
            Some(Written {
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
            id: "a@x.io".into(),
            properties: vec![("firstname".into(), "A".into())],
            links: Vec::new(),
        };
        let b = BatchInput {
            id: "b@x.io".into(),
            properties: vec![("email".into(), "new-b@x.io".into())],
            links: Vec::new(),
        };
        assert_eq!(
            String::from_utf8(v3_batch_upsert_body("email", [("0", &a), ("7", &b)])).unwrap(),
            concat!(
                r#"{"inputs":[{"id":"a@x.io","idProperty":"email","objectWriteTraceId":"0","properties":{"firstname":"A"}},"#,
                r#"{"id":"b@x.io","idProperty":"email","objectWriteTraceId":"7","properties":{"email":"new-b@x.io"}}]}"#
            )
        );
        assert_eq!(
            batch_upsert_url("https://h", &ApiVersion::Legacy, &ObjectType::default()),
            "https://h/crm/v3/objects/contacts/batch/upsert"
        );
        let dated = ApiVersion::parse("2026-09").unwrap();
        assert_eq!(
            batch_upsert_url("https://h", &dated, &ObjectType::default()),
            "https://h/crm/objects/2026-09/contacts/batch/upsert"
        );
        assert_eq!(
            properties_url("https://h", &dated, &ObjectType::default()),
            "https://h/crm/properties/2026-09/contacts"
        );
        let companies = ObjectType::parse("0-2").unwrap();
        assert_eq!(companies, ObjectType::parse(" Companies ").unwrap());
        assert_eq!(
            batch_read_url("https://h", &dated, &companies),
            "https://h/crm/objects/2026-09/companies/batch/read"
        );
        let custom = ObjectType::parse("2-123456").unwrap();
        assert_eq!(
            properties_url("https://h", &ApiVersion::Legacy, &custom),
            "https://h/crm/v3/properties/2-123456"
        );
        assert!(ObjectType::parse("cars/../contacts").is_err());
        assert!(ObjectType::parse("").is_err());
        assert_eq!(
            properties_url("https://h", &ApiVersion::Legacy, &ObjectType::default()),
            "https://h/crm/v3/properties/contacts"
        );
        assert_eq!(b.get("email"), Some("new-b@x.io"));
        assert_eq!(a.get("email"), None);
    }

    #[test]
    fn api_versions_are_checked() {
        assert_eq!(ApiVersion::parse("legacy").unwrap(), ApiVersion::Legacy);
        for good in ["2026-03", "2026-09", "2027-03", "2031-12"] {
            assert_eq!(ApiVersion::parse(good).unwrap().name(), good);
        }
        for bad in [
            "2025-09", "2026-02", "2026-3", "2026-13", "26-09", "v3", "", "2026-09 ", "Legacy",
        ] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad:?}");
        }
        let old = ApiVersion::parse("2025-09").unwrap_err().to_string();
        assert!(
            old.contains("older than HubSpot's first date version, 2026-03"),
            "{old}"
        );
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
                Written {
                    trace_id: None,
                    email: Some("b@x.io".into()),
                    vid: 1002,
                    is_new: false
                },
                Written {
                    trace_id: Some("3".into()),
                    email: None,
                    vid: 1001,
                    is_new: true
                },
            ]
        );
        assert_eq!(parse_v3_batch(br#"{"results":[{"id":"x"}]}"#), None);
        // A partial answer: its errors, each with the trace id of its input.
        let partial = br#"{"status":"COMPLETE","results":[],"numErrors":2,"errors":[
            {"status":"error","category":"VALIDATION_ERROR","message":"bad","context":{"objectWriteTraceId":["3"]},
             "errors":[{"code":"INVALID_OPTION","message":"x","context":{"propertyName":["lifecyclestage"]}}]},
            {"status":"error","category":"VALIDATION_ERROR","message":"no trace"}]}"#;
        let errors = input_errors(partial);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0.as_deref(), Some("3"));
        assert_eq!(errors[1].0, None);
        let first = crate::error::ApiError::from_response(400, None, &errors[0].1);
        assert_eq!(first.errors[0].code.as_deref(), Some("INVALID_OPTION"));
        assert_eq!(first.errors[0].name.as_deref(), Some("lifecyclestage"));
        assert!(input_errors(br#"{"results":[]}"#).is_empty());
    }

    #[test]
    fn batch_reads() {
        assert_eq!(
            String::from_utf8(v3_batch_read_body("email", ["a@x.io"], &["phone".into()])).unwrap(),
            r#"{"idProperty":"email","inputs":[{"id":"a@x.io"}],"properties":["email","hs_additional_emails","phone"]}"#
        );
        assert_eq!(
            String::from_utf8(v3_batch_read_body(OBJECT_ID, ["12"], &[])).unwrap(),
            r#"{"inputs":[{"id":"12"}],"properties":["hs_object_id"]}"#
        );
        let found = parse_v3_read(
            br#"{"status":"COMPLETE","results":[{"id":"1","properties":{"email":"A@x.io","hs_additional_emails":"b@x.io;C@x.io","phone":null}}],
            "errors":[{"category":"OBJECT_NOT_FOUND","context":{"ids":["d@x.io"]}}]}"#,
            "email",
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object_id, 1);
        assert_eq!(found[0].ids, ["a@x.io", "b@x.io", "c@x.io"]);
        assert_eq!(found[0].values["phone"], "");
        let by_ext = parse_v3_read(
            br#"{"results":[{"id":7,"properties":{"external_id":"Ab-1 "}}]}"#,
            "external_id",
        )
        .unwrap();
        assert_eq!(
            (by_ext[0].object_id, by_ext[0].ids.clone()),
            (7, vec!["Ab-1".to_owned()])
        );
        assert_eq!(parse_v3_read(b"{}", "email"), None);
        assert_eq!(parse_v3_batch(br#"{"status":"COMPLETE"}"#), None);
        let update = BatchInput {
            id: "x".into(),
            properties: vec![("phone".into(), "1".into())],
            links: Vec::new(),
        };
        assert_eq!(
            String::from_utf8(v3_batch_update_body([("4", 99, &update)])).unwrap(),
            r#"{"inputs":[{"id":"99","objectWriteTraceId":"4","properties":{"phone":"1"}}]}"#
        );
    }
}
