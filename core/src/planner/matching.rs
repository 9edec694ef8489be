//! How a run finds each record's contact and what it may do to it: the id property records are
//! matched on, the sync mode, and which properties are only filled where HubSpot's are empty.

use crate::api::OBJECT_ID;
use crate::error::{Error, Result};
use crate::schema::Schema;

/// What a run may do to the contacts of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create the contacts that do not exist, update the others.
    Upsert,
    /// Update only contacts that exist; the other records are skipped.
    Update,
    /// Create only contacts that do not exist; the other records are skipped.
    Create,
}

impl Mode {
    /// The mode's name, as [`Mode::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Upsert => "upsert",
            Mode::Update => "update",
            Mode::Create => "create",
        }
    }

    pub fn parse(text: &str) -> Result<Mode> {
        match text {
            "upsert" => Ok(Mode::Upsert),
            "update" => Ok(Mode::Update),
            "create" => Ok(Mode::Create),
            other => Err(Error::InvalidInput(format!(
                "mode must be 'upsert', 'update' or 'create', got '{other}'"
            ))),
        }
    }
}

/// Which properties are written only where the contact's value at HubSpot is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fill {
    Nothing,
    All,
    Only(Vec<String>),
}

impl Fill {
    pub(crate) fn covers(&self, name: &str) -> bool {
        match self {
            Fill::Nothing => false,
            Fill::All => true,
            Fill::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// How a run matches records to objects (contacts, unless `object` says otherwise), and its
/// sync mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    /// What the records are: contacts, companies, deals, a custom object...
    pub object: crate::api::ObjectType,
    /// The unique property a record's id is a value of: `email`, a custom property whose
    /// definition has `hasUniqueValue`, or `hs_object_id` (HubSpot's own id).
    pub id_property: String,
    pub(crate) mode: Mode,
    pub(crate) fill: Fill,
    /// Nothing is written: each record's contact is read, and what the run would do to it
    /// is its outcome ([`super::Fate::Planned`]).
    pub dry_run: bool,
    /// Records name properties and options by their labels too, as HubSpot's own export does
    /// (see [`crate::schema::Schema::relabel`]).
    pub labels: bool,
}

/// Why a record was skipped, not written: its code and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub code: &'static str,
    pub reason: &'static str,
}

impl Default for Matching {
    fn default() -> Self {
        Matching {
            object: Default::default(),
            id_property: "email".to_owned(),
            mode: Mode::Upsert,
            fill: Fill::Nothing,
            dry_run: false,
            labels: false,
        }
    }
}

impl Matching {
    pub fn new(id_property: &str, mode: Mode, fill: Fill) -> Result<Matching> {
        let id_property = id_property.trim();
        if id_property.is_empty() {
            return Err(Error::InvalidInput(
                "id_property must name a unique property, got ''".into(),
            ));
        }
        if mode == Mode::Create && id_property == OBJECT_ID {
            return Err(Error::InvalidInput(
                "mode='create' cannot address records by hs_object_id: HubSpot gives that id \
                 when it creates a contact"
                    .into(),
            ));
        }
        if let Fill::Only(names) = &fill {
            if let Some(bad) = names.iter().find(|n| n.trim().is_empty()) {
                return Err(Error::InvalidInput(format!(
                    "fill_empty must name properties, got {bad:?}"
                )));
            }
        }
        Ok(Matching {
            object: Default::default(),
            id_property: id_property.to_owned(),
            mode,
            fill,
            dry_run: false,
            labels: false,
        })
    }

    /// Records are contacts matched by address (any other object's `email` is an ordinary
    /// property, and no id of it).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn by_email(&self) -> bool {
        self.id_property == "email" && self.object.is_contacts()
    }

    pub(crate) fn by_object_id(&self) -> bool {
        self.id_property == OBJECT_ID
    }

    /// Whether each record's contact is read before it is written: to know whether it exists
    /// (update and create only, and a dry run) or what it holds (fill empty fields).
    pub(crate) fn reads_first(&self) -> bool {
        self.mode != Mode::Upsert || self.fill != Fill::Nothing || self.dry_run
    }

    /// How ids are compared: addresses in any case, other values exactly.
    pub fn key(&self, id: &str) -> String {
        if self.by_email() {
            id.to_lowercase()
        } else {
            id.to_owned()
        }
    }

    /// Checks an id as a record carries it; returns it as it is sent.
    pub fn check_id(&self, id: &str) -> std::result::Result<String, String> {
        let id = id.trim();
        if self.by_email() {
            crate::email::validate(id).map_err(|e| e.to_string())?;
        } else if self.by_object_id()
            && !(id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<i64>().is_ok_and(|n| n > 0))
        {
            return Err(format!(
                "'{id}' is not a HubSpot record id (hs_object_id is a positive whole number)"
            ));
        }
        Ok(id.to_owned())
    }

    /// Why the portal's definitions say the id property cannot match records, if they do:
    /// HubSpot upserts only by `email` or by a property whose values are unique.
    pub(crate) fn refusal(&self, schema: &Schema) -> Option<Error> {
        if self.by_email() || self.by_object_id() {
            return None;
        }
        let name = &self.id_property;
        let object = self.object.name();
        let on = match self.object.is_contacts() {
            true => "email, hs_object_id",
            false => "hs_object_id",
        };
        let why = match schema.get(name) {
            None if self.object.is_contacts() => {
                format!("the portal has no contact property '{name}'")
            }
            None => format!("the portal's {object} have no property '{name}'"),
            Some(p) if !p.unique => format!(
                "'{name}' is not a unique property of {object} (its definition lacks \
                 hasUniqueValue): HubSpot matches records only on {on} or a property whose \
                 values are unique"
            ),
            Some(_) => return None,
        };
        Some(Error::InvalidInput(format!(
            "id_property '{name}' cannot match records: {why}; nothing was sent"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert!(Mode::parse("update").is_ok());
        assert!(Mode::parse("Update").is_err());
        assert!(Matching::new(" ", Mode::Upsert, Fill::Nothing).is_err());
        assert!(Matching::new("hs_object_id", Mode::Create, Fill::Nothing).is_err());
        assert!(Matching::new("x", Mode::Upsert, Fill::Only(vec!["".into()])).is_err());
        let m = Matching::new("hs_object_id", Mode::Update, Fill::Nothing).unwrap();
        assert!(m.reads_first());
        assert!(m.check_id("12").is_ok());
        assert!(m.check_id("0").is_err());
        assert!(m.check_id("-3").is_err());
        assert!(m.check_id("1e3").is_err());
        let e = Matching::default();
        assert!(!e.reads_first());
        assert_eq!(e.key("A@X.io"), "a@x.io");
        assert!(e.check_id("not an address").is_err());
        let ext = Matching::new("external_id", Mode::Upsert, Fill::All).unwrap();
        assert_eq!(ext.key("Ab"), "Ab");
        assert!(ext.reads_first());
        assert!(Fill::All.covers("x") && !Fill::Nothing.covers("x"));
    }
}
