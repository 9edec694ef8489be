//! The portal's contact property definitions, and the checks they allow before anything is
//! sent: a property the portal lacks, one nobody may write, an enumeration value outside its
//! options, a value that does not fit a number, bool, date or datetime property.
//!
//! The codes are HubSpot's own, so that a record refused here reads like one HubSpot refused.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::error::FieldError;

/// What kind of value a property holds (HubSpot's `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Number,
    Bool,
    Date,
    DateTime,
    /// The option values (not labels) a value, or each `;`-separated part of it, must be one of.
    Enumeration(Vec<String>),
    /// An enumeration whose options live elsewhere (`externalOptions`: the owner, pipeline
    /// stages): its definition lists none, so values go to HubSpot unchecked.
    External,
}

/// One property definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Property {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Calculated, or `modificationMetadata.readOnlyValue`: refused on writes.
    pub(crate) read_only: bool,
    /// `hasUniqueValue`: no two contacts share a value, so records can be matched on it.
    pub(crate) unique: bool,
    /// What HubSpot's screens and exports call it ("First Name").
    pub(crate) label: String,
    /// The options' labels and their values ("Marketing Qualified Lead", "marketingqualifiedlead").
    pub(crate) option_labels: Vec<(String, String)>,
}

/// The definitions of one portal's contact properties, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// The object type whose properties these are (`contacts` unless set).
    object: String,
    properties: HashMap<String, Property>,
    /// The names of the properties of each label (more than one: the label is ambiguous).
    by_label: HashMap<String, Vec<String>>,
}

fn str_at<'a>(json: &'a Json, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Json::as_str)
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => {
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && !fraction.is_empty()
                && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => is_integer(unsigned),
    }
}

/// `YYYY-MM-DD`, which HubSpot takes for date properties as well as epoch milliseconds.
fn is_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// An ISO 8601 date-time (`2024-08-15T17:09:13.648Z`, or with an offset).
fn is_iso_datetime(text: &str) -> bool {
    text.len() > 11 && is_iso_date(&text[..10]) && text.as_bytes()[10] == b'T'
}

/// An ISO 8601 date-time at midnight UTC (`2020-02-29T00:00:00.000Z`), which a date property
/// takes like its date.
fn is_iso_midnight(text: &str) -> bool {
    if !is_iso_datetime(text) {
        return false;
    }
    let time = &text[11..];
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    clock.bytes().all(|b| b == b'0' || b == b':' || b == b'.')
        && clock.bytes().any(|b| b == b'0')
        && matches!(zone, "" | "Z" | "z" | "+00:00" | "-00:00" | "+0000" | "+00")
}

const DAY_MS: i128 = 86_400_000;

impl Schema {
    /// Reads the answer of `GET .../properties/contacts`: `{"results": [{"name", "type",
    /// "options": [{"value"}], "calculated", "modificationMetadata": {"readOnlyValue"}}]}`.
    /// `None` when the answer is not of that shape.
    /// The same definitions, as those of `object`'s properties (named in messages).
    pub(crate) fn of_object(mut self, object: &str) -> Schema {
        self.object = object.to_owned();
        self
    }

    pub(crate) fn from_json(body: &[u8]) -> Option<Schema> {
        let json: Json = serde_json::from_slice(body).ok()?;
        let mut properties = HashMap::new();
        for p in json.get("results")?.as_array()? {
            let name = str_at(p, "name")?.to_owned();
            let options = || {
                p.get("options")
                    .and_then(Json::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|o| str_at(o, "value").map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let external = p.get("externalOptions").and_then(Json::as_bool) == Some(true)
                || p.get("referencedObjectType").is_some_and(|r| !r.is_null());
            let kind = match str_at(p, "type").unwrap_or("string") {
                "number" => Kind::Number,
                "bool" => Kind::Bool,
                "date" => Kind::Date,
                "datetime" => Kind::DateTime,
                "enumeration" if external => Kind::External,
                "enumeration" => Kind::Enumeration(options()),
                _ => Kind::Text,
            };
            let read_only = p.get("calculated").and_then(Json::as_bool) == Some(true)
                || p.get("modificationMetadata")
                    .and_then(|m| m.get("readOnlyValue"))
                    .and_then(Json::as_bool)
                    == Some(true);
            let unique = p.get("hasUniqueValue").and_then(Json::as_bool) == Some(true);
            let label = str_at(p, "label").unwrap_or_default().trim().to_owned();
            let option_labels = p
                .get("options")
                .and_then(Json::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|o| {
                            Some((
                                str_at(o, "label")?.trim().to_owned(),
                                str_at(o, "value")?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            properties.insert(
                name.clone(),
                Property {
                    name,
                    kind,
                    read_only,
                    unique,
                    label,
                    option_labels,
                },
            );
        }
        Some(Schema::new(properties.into_values()))
    }

    pub(crate) fn new(properties: impl IntoIterator<Item = Property>) -> Schema {
        let properties: HashMap<String, Property> = properties
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut by_label: HashMap<String, Vec<String>> = HashMap::new();
        for p in properties.values().filter(|p| !p.label.is_empty()) {
            by_label
                .entry(p.label.clone())
                .or_default()
                .push(p.name.clone());
        }
        for names in by_label.values_mut() {
            names.sort();
        }
        Schema {
            object: "contacts".to_owned(),
            properties,
            by_label,
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.properties.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Property> {
        self.properties.get(name)
    }

    /// A record as HubSpot's own export writes it, read back: a field named by a property's
    /// label (not its name) is that property's; an enumeration value that is an option's
    /// label is that option's value; a read-only property (an export's "Record ID", "Create
    /// Date") is left out, its field added to `left_out`. A label two properties share is an
    /// error naming both.
    pub(crate) fn relabel(
        &self,
        properties: &mut Vec<(String, String)>,
        left_out: &mut std::collections::BTreeSet<String>,
    ) -> Result<(), crate::error::Error> {
        let mut kept = Vec::with_capacity(properties.len());
        for (field, value) in properties.drain(..) {
            let name = match self.by_label.get(field.trim()).map(Vec::as_slice) {
                _ if self.has(&field) => field.clone(),
                Some([one]) => one.clone(),
                Some([a, b, ..]) => {
                    return Err(crate::error::Error::InvalidInput(format!(
                        "the field '{field}' is the label of more than one property ('{a}' and \
                         '{b}'): name the property instead"
                    )));
                }
                _ => field.clone(),
            };
            let Some(property) = self.properties.get(&name) else {
                kept.push((name, value));
                continue;
            };
            if property.read_only {
                left_out.insert(match field == name {
                    true => field,
                    false => format!("{field} ({name})"),
                });
                continue;
            }
            let value = match &property.kind {
                Kind::Enumeration(values) if !value.is_empty() => {
                    let (lead, rest) = match value.strip_prefix(';') {
                        Some(rest) => (";", rest),
                        None => ("", value.as_str()),
                    };
                    let parts: Vec<String> = rest
                        .split(';')
                        .map(|part| {
                            if values.iter().any(|v| v == part) {
                                return part.to_owned();
                            }
                            let mut by_label = property
                                .option_labels
                                .iter()
                                .filter(|(label, _)| label == part.trim());
                            match (by_label.next(), by_label.next()) {
                                (Some((_, v)), None) => v.clone(),
                                _ => part.to_owned(),
                            }
                        })
                        .collect();
                    format!("{lead}{}", parts.join(";"))
                }
                _ => value,
            };
            kept.push((name, value));
        }
        *properties = kept;
        Ok(())
    }

    /// Why HubSpot would refuse a record setting `properties`, if it would: every refused
    /// property, in the record's order, as the error the record fails with (nothing was sent
    /// for it). HubSpot would name only the first; the definitions show them all at once.
    pub(crate) fn refusal(&self, properties: &[(String, String)]) -> Option<crate::error::Error> {
        let mut refused = properties
            .iter()
            .filter_map(|(name, value)| self.check(name, value));
        let field = refused.next()?;
        let also: Vec<FieldError> = refused.collect();
        let said = std::iter::once(&field)
            .chain(&also)
            .map(|f| f.line(usize::MAX))
            .collect::<Vec<_>>()
            .join("; ");
        Some(crate::error::Error::Refused {
            message: format!("not sent: the portal's property definitions refuse {said}"),
            status: None,
            correlation_id: None,
            field: Box::new(field),
            also,
        })
    }

    /// Why HubSpot would refuse `name` = `value`, if it would.
    pub(crate) fn check(&self, name: &str, value: &str) -> Option<FieldError> {
        let refuse = |code: &str, message: String| {
            Some(FieldError {
                name: Some(name.to_owned()),
                code: Some(code.to_owned()),
                message: Some(message),
            })
        };
        let Some(property) = self.properties.get(name) else {
            let mut message = match self.object.as_str() {
                "contacts" | "" => format!("the portal has no contact property '{name}'"),
                object => format!("the portal's {object} have no property '{name}'"),
            };
            // A column named by a label, as HubSpot's export writes it ("First Name").
            if let Some([property]) = self.by_label.get(name.trim()).map(Vec::as_slice) {
                message += &format!(
                    " ('{}' is the label of '{property}': labels=True, or --labels, reads \
                     fields by their labels)",
                    name.trim()
                );
            }
            return refuse("PROPERTY_DOESNT_EXIST", message);
        };
        if property.read_only {
            return refuse(
                "READ_ONLY_VALUE",
                format!("'{name}' is a read-only property: HubSpot sets it"),
            );
        }
        if value.is_empty() {
            return None; // clears the property, whatever its type
        }
        match &property.kind {
            Kind::Text | Kind::External => None,
            Kind::Number if is_number(value) => None,
            Kind::Number => refuse(
                "INVALID_INTEGER",
                format!("'{value}' is not a number, which '{name}' holds"),
            ),
            Kind::Bool if value == "true" || value == "false" => None,
            Kind::Bool => refuse(
                "INVALID_OPTION",
                format!("'{value}' is not one of the allowed options of '{name}': true, false"),
            ),
            Kind::Date if is_iso_date(value) || is_iso_midnight(value) => None,
            Kind::Date if is_integer(value) => match value.parse::<i128>() {
                Ok(ms) if ms % DAY_MS == 0 => None,
                _ => refuse(
                    "INVALID_DATE",
                    format!(
                        "'{value}' is not midnight UTC, which the date property '{name}' needs"
                    ),
                ),
            },
            Kind::DateTime if is_integer(value) || is_iso_datetime(value) || is_iso_date(value) => {
                None
            }
            Kind::Date | Kind::DateTime => refuse(
                "INVALID_DATE",
                format!("'{value}' is not epoch milliseconds or an ISO date, which '{name}' holds"),
            ),
            Kind::Enumeration(options) => {
                let bad = value
                    .strip_prefix(';')
                    .unwrap_or(value)
                    .split(';')
                    .find(|part| !options.iter().any(|o| o == part))?;
                let mut shown: Vec<&str> = options.iter().map(String::as_str).take(10).collect();
                if options.len() > 10 {
                    shown.push("...");
                }
                refuse(
                    "INVALID_OPTION",
                    format!(
                        "'{bad}' is not one of the allowed options of '{name}': [{}]",
                        shown.join(", ")
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_json(
            br#"{"results":[
            {"name":"email","type":"string","fieldType":"text"},
            {"name":"firstname","type":"string"},
            {"name":"score","type":"number"},
            {"name":"vip","type":"bool","options":[{"label":"Yes","value":"true"},{"label":"No","value":"false"}]},
            {"name":"born","type":"date"},
            {"name":"seen","type":"datetime"},
            {"name":"lifecyclestage","type":"enumeration","options":[{"label":"Lead","value":"lead"},{"label":"Customer","value":"customer"}]},
            {"name":"hs_object_id","type":"number","calculated":false,"modificationMetadata":{"readOnlyValue":true}},
            {"name":"days_to_close","type":"number","calculated":true},
            {"name":"hubspot_owner_id","type":"enumeration","fieldType":"select","options":[],"externalOptions":true,"referencedObjectType":"OWNER"},
            {"name":"stage","type":"enumeration","options":[],"referencedObjectType":"PIPELINE_STAGE"}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn an_export_is_read_back_by_its_labels() {
        let schema = Schema::from_json(
            br#"{"results":[
            {"name":"firstname","label":"First Name","type":"string"},
            {"name":"lifecyclestage","label":"Lifecycle Stage","type":"enumeration","options":[
                {"label":"Lead","value":"lead"},{"label":"Marketing Qualified Lead","value":"marketingqualifiedlead"}]},
            {"name":"hs_object_id","label":"Record ID","type":"number","modificationMetadata":{"readOnlyValue":true}},
            {"name":"a_note","label":"Note","type":"string"},
            {"name":"b_note","label":"Note","type":"string"}
            ]}"#,
        )
        .unwrap();
        let mut left_out = std::collections::BTreeSet::new();
        let mut record: Vec<(String, String)> = [
            ("First Name", "Ada"),
            ("Lifecycle Stage", "Marketing Qualified Lead"),
            ("Record ID", "123"),
            ("unknown", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        schema.relabel(&mut record, &mut left_out).unwrap();
        assert_eq!(
            record,
            [
                ("firstname".to_owned(), "Ada".to_owned()),
                ("lifecyclestage".into(), "marketingqualifiedlead".into()),
                ("unknown".into(), "x".into()),
            ]
        );
        assert_eq!(
            left_out.into_iter().collect::<Vec<_>>(),
            ["Record ID (hs_object_id)"]
        );
        let mut multi = vec![("lifecyclestage".to_owned(), ";Lead;lead;Nope".to_owned())];
        schema.relabel(&mut multi, &mut Default::default()).unwrap();
        assert_eq!(multi[0].1, ";lead;lead;Nope");
        let mut twice = vec![("Note".to_owned(), "x".to_owned())];
        let e = schema
            .relabel(&mut twice, &mut Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'a_note' and 'b_note'"), "{e}");
    }

    fn code(name: &str, value: &str) -> Option<String> {
        schema().check(name, value).and_then(|e| e.code)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("firstname", "Ada", None),
            ("firstname", "", None),
            ("shoe_size", "44", Some("PROPERTY_DOESNT_EXIST")),
            (" firstname", "Ada", Some("PROPERTY_DOESNT_EXIST")),
            ("hs_object_id", "12", Some("READ_ONLY_VALUE")),
            ("hs_object_id", "", Some("READ_ONLY_VALUE")),
            ("days_to_close", "3", Some("READ_ONLY_VALUE")),
            ("score", "-1.5", None),
            ("score", "12", None),
            ("score", "1e5", Some("INVALID_INTEGER")),
            ("score", "1,000", Some("INVALID_INTEGER")),
            ("score", ".5", Some("INVALID_INTEGER")),
            ("vip", "true", None),
            ("vip", "yes", Some("INVALID_OPTION")),
            ("born", "1723680000000", None),
            ("born", "2024-08-15", None),
            ("born", "1723741753648", Some("INVALID_DATE")),
            ("born", "15/08/2024", Some("INVALID_DATE")),
            ("born", "2020-02-29T00:00:00.000Z", None),
            ("born", "2020-02-29T00:00:00+00:00", None),
            ("born", "2020-02-29T03:30:17.000Z", Some("INVALID_DATE")),
            ("born", "2020-02-29T00:00:00+02:00", Some("INVALID_DATE")),
            ("seen", "2020-02-29", None),
            ("seen", "1723741753648", None),
            ("seen", "2024-08-15T17:09:13.648Z", None),
            ("seen", "yesterday", Some("INVALID_DATE")),
            ("lifecyclestage", "lead", None),
            ("lifecyclestage", "Lead", Some("INVALID_OPTION")),
            ("lifecyclestage", "bogus", Some("INVALID_OPTION")),
            ("lifecyclestage", ";customer", None),
            ("lifecyclestage", "lead;bogus", Some("INVALID_OPTION")),
            // Options that live elsewhere (owners, pipeline stages): HubSpot checks them.
            ("hubspot_owner_id", "12345", None),
            ("stage", "appointmentscheduled", None),
        ];
        for (name, value, want) in cases {
            assert_eq!(code(name, value).as_deref(), *want, "{name} = {value:?}");
        }
    }

    #[test]
    fn messages_name_the_value_and_options() {
        let e = schema().check("lifecyclestage", "bogus").unwrap();
        assert_eq!(e.name.as_deref(), Some("lifecyclestage"));
        assert_eq!(
            e.message.as_deref(),
            Some("'bogus' is not one of the allowed options of 'lifecyclestage': [lead, customer]")
        );
    }

    #[test]
    fn other_shapes_are_refused() {
        assert_eq!(Schema::from_json(b"{}"), None);
        assert_eq!(
            Schema::from_json(br#"{"results":[{"type":"string"}]}"#),
            None
        );
        assert!(Schema::from_json(br#"{"results":[]}"#).is_some());
    }
}
