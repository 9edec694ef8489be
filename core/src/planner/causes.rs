//! What HubSpot's refusals teach: the property, the value or the address an error names, as a
//! cause that fails every record carrying it.

use super::Entry;
use crate::error::{Error, FieldError};

/// What a cause refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// Any value of this property (it does not exist, or is read-only).
    Property(String),
    /// This value of this property (or this part of a `;`-joined one).
    Value(String, String),
    /// The contact with this address (lower-case).
    Email(String),
    /// New contacts without a value for this property: an admin's rule requires it on create
    /// (HubSpot's `MISSING_REQUIRED_PROPERTY`). Contacts found to exist are not concerned.
    Lacks(String),
}

/// Whether `entry` sets no value for `name` (an empty value sets none either).
pub(crate) fn lacks(entry: &Entry, name: &str) -> bool {
    entry.input.get(name).is_none_or(str::is_empty)
}

/// A cause learned from an answer: what it refuses, and the error the records that carry it get.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub(crate) target: Target,
    pub(crate) field: FieldError,
    pub(crate) status: u16,
    pub(crate) correlation_id: Option<String>,
}

impl Target {
    pub(crate) fn matches(&self, entry: &Entry) -> bool {
        match self {
            Target::Property(name) => entry.input.get(name).is_some(),
            Target::Value(name, value) => entry.input.get(name).is_some_and(|v| {
                v == value || v.trim_start_matches(';').split(';').any(|p| p == value)
            }),
            Target::Email(address) => entry.addresses().any(|a| a == *address),
            Target::Lacks(name) => !entry.exists && lacks(entry, name),
        }
    }
}

impl Cause {
    pub(crate) fn error(&self, sent: bool) -> Error {
        let said = self.field.message.as_deref().unwrap_or("refused");
        let how = if sent {
            ""
        } else {
            "; not sent: an earlier answer named this cause"
        };
        Error::Refused {
            message: format!(
                "HubSpot refused {} {}: {said}{how} [HTTP {}, correlation id {}]",
                self.field.name.as_deref().unwrap_or("?"),
                self.field.code.as_deref().unwrap_or("INVALID"),
                self.status,
                self.correlation_id.as_deref().unwrap_or("none")
            ),
            status: Some(self.status),
            correlation_id: self.correlation_id.clone(),
            field: Box::new(self.field.clone()),
            also: Vec::new(),
        }
    }
}

/// Whether `text` names `needle` as a whole word (not inside a longer address or word), and
/// where first.
fn mention(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let lower = text.to_lowercase();
    let needle = needle.to_lowercase();
    let part_of_word =
        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "@.-_+".contains(c));
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = lower[..start].chars().next_back();
        let after = lower[end..].chars().next();
        // A trailing '.' ends a sentence, not an address.
        let after_ok = !part_of_word(after)
            || (after == Some('.')
                && lower[end + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace));
        if !part_of_word(before) && after_ok {
            return Some(start);
        }
        from = start + needle.len().max(1);
    }
    None
}

const PROPERTY_CODES: &[&str] = &["PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE", "READ_ONLY"];

/// What one error of a rejected batch says about the entries of that batch: a cause that names
/// some of them, or only the property that some of them carry ("suspects").
pub(crate) enum Finding {
    Cause(Target),
    Suspects(String),
    /// Some record lacking this property is refused, the answer did not say which (a rule
    /// that requires it when another property has some value).
    Lacking(String),
    Nothing,
}

pub(crate) fn read_error(field: &FieldError, entries: &[Entry]) -> Finding {
    let code = field.code.as_deref().unwrap_or("");
    let message = field.message.as_deref().unwrap_or("");
    let name = field.name.as_deref();
    if code == "INVALID_EMAIL" || name == Some("email") {
        let named = entries
            .iter()
            .flat_map(|e| e.addresses())
            .filter_map(|a| mention(message, &a).map(|at| (at, a)))
            .min();
        return match named {
            Some((_, address)) => Finding::Cause(Target::Email(address)),
            None => Finding::Nothing,
        };
    }
    let Some(name) = name else {
        return Finding::Nothing;
    };
    if code == "MISSING_REQUIRED_PROPERTY" {
        // Only records that lack it and may be new: the others cannot be what was refused.
        let target = Target::Lacks(name.to_owned());
        return match entries.iter().any(|e| target.matches(e)) {
            true => Finding::Cause(target),
            false => Finding::Nothing,
        };
    }
    if code == "MISSING_CONDITIONAL_REQUIRED_PROPERTY" {
        return match entries.iter().any(|e| lacks(e, name)) {
            true => Finding::Lacking(name.to_owned()),
            false => Finding::Nothing,
        };
    }
    let carriers: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.input.get(name).is_some())
        .collect();
    if carriers.is_empty() {
        return Finding::Nothing;
    }
    if PROPERTY_CODES.iter().any(|c| code.contains(c)) {
        return Finding::Cause(Target::Property(name.to_owned()));
    }
    // A value that does not fit: the one the message names first (the allowed options, which
    // the message may list after it, come later).
    let named = carriers
        .iter()
        .filter_map(|e| e.input.get(name))
        .flat_map(|v| std::iter::once(v).chain(v.trim_start_matches(';').split(';')))
        .filter_map(|v| mention(message, v).map(|at| (at, v.to_owned())))
        .min();
    match named {
        Some((_, value)) => Finding::Cause(Target::Value(name.to_owned(), value)),
        None => Finding::Suspects(name.to_owned()),
    }
}
