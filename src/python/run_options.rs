//! A bulk run's options as every face's `create_or_update_many` and `check_many` take them,
//! read and checked here once into [`BulkOptions`], before any record is read or any request
//! sent. The faces (contacts, other objects, sync and async) only pass them on.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use super::bulk::{self, Run};
use super::convert::ConvertOptions;
use super::errors;
use super::results::Keep;
use crate::api::ObjectType;
use crate::client::Association;
use crate::planner::{Fill, Matching, Mode};

/// The share of a sync state's records a mirror run archives at most, unless told otherwise.
pub const MAX_ARCHIVE: f64 = 0.1;

/// How a bulk run matches, writes, keeps and mirrors its records: `create_or_update_many`'s
/// keyword options (except the records' source, the sync state and the progress callback,
/// which are objects of the caller's), checked.
#[pyclass(frozen, module = "hubspot_upsert._native")]
pub struct BulkOptions {
    /// `id_property` as given: None matches contacts on email and is refused for other types.
    id_property: Option<String>,
    /// Matching and mode, on the id property (email when none was given).
    matching: Matching,
    id_field: Option<String>,
    keep: Keep,
    max_in_flight: usize,
    full: bool,
    mirror: bool,
    max_archive: f64,
    associations: Vec<(Association, String)>,
}

#[pymethods]
impl BulkOptions {
    #[new]
    #[pyo3(signature = (*, id_property=None, id_field=None, mode="upsert", fill_empty=None, labels=None, keep="all", max_in_flight=None, full=None, associate=None, mirror=None, max_archive=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        id_property: Option<&str>,
        id_field: Option<&str>,
        mode: &str,
        fill_empty: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
        keep: &str,
        max_in_flight: Option<&Bound<'_, PyAny>>,
        full: Option<&Bound<'_, PyAny>>,
        associate: Option<&Bound<'_, PyAny>>,
        mirror: Option<&Bound<'_, PyAny>>,
        max_archive: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mode = Mode::parse(mode).map_err(errors::to_py)?;
        let mut matching = Matching::new(id_property.unwrap_or("email"), mode, fill(fill_empty)?)
            .map_err(errors::to_py)?;
        matching.labels = truthy(labels)?;
        let id_field = match id_field {
            Some(field) => Some(bulk::field_name(field, id_option(&matching))?.to_owned()),
            None => None,
        };
        Ok(BulkOptions {
            id_property: id_property.map(|p| p.trim().to_owned()),
            matching,
            id_field,
            keep: Keep::parse(keep)?,
            max_in_flight: max_in_flight.map_or(Ok(64), in_flight)?,
            full: truthy(full)?,
            mirror: truthy(mirror)?,
            max_archive: match max_archive {
                None => MAX_ARCHIVE,
                Some(value) => share(value)?,
            },
            associations: associations(associate)?,
        })
    }

    /// The property records of `object` are matched on: `id_property`, or email for
    /// contacts; other object types need one.
    fn id_property_of(&self, object: &str) -> PyResult<String> {
        Ok(self.matching(object, false)?.id_property)
    }

    /// `mode` as given: "upsert", "update" or "create".
    #[getter]
    fn mode(&self) -> &'static str {
        self.matching.mode().name()
    }

    #[getter]
    fn full(&self) -> bool {
        self.full
    }

    #[getter]
    fn mirror(&self) -> bool {
        self.mirror
    }

    #[getter]
    fn max_archive(&self) -> f64 {
        self.max_archive
    }

    fn __repr__(&self) -> String {
        format!(
            "<BulkOptions id_property={:?} max_in_flight={} mirror={}>",
            self.matching.id_property, self.max_in_flight, self.mirror
        )
    }
}

impl BulkOptions {
    /// The run's matching for records of `object` (a dry run reads and writes nothing).
    fn matching(&self, object: &str, dry_run: bool) -> PyResult<Matching> {
        let object = ObjectType::parse(object).map_err(errors::to_py)?;
        if self.id_property.is_none() && object != ObjectType::default() {
            return Err(PyTypeError::new_err(format!(
                "records of {} are matched on id_property=: a unique property of theirs (such \
                 as your own CRM id) or 'hs_object_id'",
                object.name()
            )));
        }
        let mut matching = self.matching.clone();
        matching.object = object;
        matching.dry_run = dry_run;
        Ok(matching)
    }

    /// A run of records of `object` with these options, keeping `keep` (a dry run reads and
    /// writes nothing); its associations are made once [`Run::through`] gives it a client.
    pub fn run<'a, 'py>(
        &self,
        records: &'a Bound<'py, PyAny>,
        object: &str,
        dry_run: bool,
        convert: ConvertOptions,
        keep: Keep,
    ) -> PyResult<Run<'a, 'py>> {
        let matching = self.matching(object, dry_run)?;
        // The id property was checked non-empty, as `id_field` was.
        let id_field = self
            .id_field
            .clone()
            .unwrap_or_else(|| matching.id_property.clone());
        let associations = self.associations.clone();
        Ok(Run::new(
            records,
            id_field,
            matching,
            convert,
            keep,
            associations,
        ))
    }

    pub fn keep(&self) -> Keep {
        self.keep
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// The option naming the field of each record's id: `email_field` for contacts matched on
/// email, `id_field` otherwise.
fn id_option(matching: &Matching) -> &'static str {
    match matching.by_email() {
        true => "email_field",
        false => "id_field",
    }
}

/// How a single upsert or a check of records of `object` matches them: on `id_property`.
pub fn plain(object: &str, id_property: &str) -> PyResult<Matching> {
    let mut matching =
        Matching::new(id_property, Mode::Upsert, Fill::Nothing).map_err(errors::to_py)?;
    matching.object = ObjectType::parse(object).map_err(errors::to_py)?;
    Ok(matching)
}

/// `fill_empty`: False or None (nothing), True (every property), a property's name or names.
fn fill(fill_empty: Option<&Bound<'_, PyAny>>) -> PyResult<Fill> {
    let Some(fill_empty) = fill_empty.filter(|f| !f.is_none()) else {
        return Ok(Fill::Nothing);
    };
    if let Ok(all) = fill_empty.cast::<PyBool>() {
        return Ok(match all.is_true() {
            true => Fill::All,
            false => Fill::Nothing,
        });
    }
    if let Ok(name) = fill_empty.cast::<PyString>() {
        return Ok(Fill::Only(vec![name.to_str()?.to_owned()]));
    }
    let mut names = Vec::new();
    let items = fill_empty.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "fill_empty must be True, False or property names, got {}",
            type_name(fill_empty)
        ))
    })?;
    for name in items {
        let name = name?;
        let Ok(name) = name.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "fill_empty must name properties (str), got {}",
                type_name(&name)
            )));
        };
        names.push(name.to_str()?.to_owned());
    }
    Ok(match names.is_empty() {
        true => Fill::Nothing,
        false => Fill::Only(names),
    })
}

fn in_flight(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "max_in_flight must be an int, got {}",
            type_name(value)
        )));
    }
    match value.extract::<i64>().ok().map(usize::try_from) {
        Some(Ok(n @ 1..)) => Ok(n),
        _ => Err(PyValueError::new_err(format!(
            "max_in_flight must be at least 1, got {value}"
        ))),
    }
}

/// `max_archive`: a share of the state's records, from 0 to 1.
fn share(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "max_archive must be a number, got {}",
            type_name(value)
        )));
    }
    let share: f64 = value.extract()?;
    if !(0.0..=1.0).contains(&share) {
        return Err(PyValueError::new_err(format!(
            "max_archive must be a share between 0 and 1 (0.1: a tenth), got {}",
            value.repr()?
        )));
    }
    Ok(share)
}

/// `associate=`: each object type mapped to `(field, property)` or `(field, property,
/// label)`: the field of each record holding the associated record's key, the property of
/// that type the key is a value of (`hs_object_id`: HubSpot's id), and the association label.
pub fn associations(associate: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(Association, String)>> {
    let Some(associate) = associate.filter(|a| !a.is_none()) else {
        return Ok(Vec::new());
    };
    let Ok(associate) = associate.cast::<PyDict>() else {
        let mapping = associate.is_instance_of::<pyo3::types::PyMapping>();
        if !mapping {
            return Err(PyTypeError::new_err(format!(
                "associate must map object types to (field, property) pairs, such as \
                 {{'companies': ('company_id', 'crm_id')}}, got {}",
                type_name(associate)
            )));
        }
        let dict = PyDict::new(associate.py());
        for item in associate.call_method0("items")?.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            dict.set_item(key, value)?;
        }
        return associations(Some(dict.as_any()));
    };
    let mut out: Vec<(Association, String)> = Vec::new();
    for (object_type, spec) in associate.iter() {
        let Ok(name) = object_type.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "associate's keys are object types (str), got {}",
                object_type.repr()?
            )));
        };
        let quoted = name.repr()?;
        let name = name.to_str()?;
        let parts: Option<Vec<String>> = spec
            .cast::<PyTuple>()
            .ok()
            .filter(|t| matches!(t.len(), 2 | 3))
            .and_then(|t| t.iter().map(|x| x.extract::<String>().ok()).collect());
        let Some(parts) = parts else {
            let spec = spec.repr()?;
            return Err(PyTypeError::new_err(format!(
                "associate={{{quoted}: ...}} takes (field, property) or (field, property, \
                 label): the field of each record holding the key, the unique property of \
                 {name} (or 'hs_object_id') it matches, and optionally an association label, \
                 such as ({spec}, 'crm_id', 'Primary'), got {spec}"
            )));
        };
        let (field, by) = (parts[0].clone(), parts[1].trim().to_owned());
        let label = match parts.get(2) {
            Some(label) if label.trim().is_empty() => {
                return Err(PyValueError::new_err(format!(
                    "associate={{{quoted}: ...}}: the label is empty"
                )))
            }
            label => label.map(|l| l.trim().to_owned()),
        };
        let to = ObjectType::parse(name).map_err(errors::to_py)?;
        if field.is_empty() || by.is_empty() {
            return Err(PyValueError::new_err(format!(
                "an association names the field holding each record's key and the property of \
                 {} it matches, got ({field:?}, {by:?})",
                to.name()
            )));
        }
        if out.iter().any(|(a, _)| a.to == to) {
            return Err(PyValueError::new_err(format!(
                "{} is named twice among the associations",
                to.name()
            )));
        }
        out.push((Association { to, by, label }, field));
    }
    Ok(out)
}

fn truthy(value: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    value.map_or(Ok(false), |v| v.is_truthy())
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}
