//! What Python gets back: `UpsertResult` for one contact that landed, `BulkResult` for a bulk
//! run (each failed record in it a `RecordError`, made by `errors.rs`).

use std::sync::atomic::Ordering;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::errors;

/// The result of one upsert: the contact's id, whether it was created, its address, and the
/// id it was matched on.
#[pyclass(frozen, eq, hash, get_all, module = "hubspot_upsert")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UpsertResult {
    vid: i64,
    is_new: bool,
    /// The contact's address: the id when records are matched by email, else the email the
    /// record set, if it set one.
    email: Option<String>,
    id: String,
    id_property: String,
    /// Not sent by a bulk run: its sync state showed HubSpot holds these values already.
    pub(super) unchanged: bool,
}

#[pymethods]
impl UpsertResult {
    #[new]
    #[pyo3(signature = (vid, is_new, email, id=None, id_property="email", unchanged=false))]
    fn new(
        vid: i64,
        is_new: bool,
        email: Option<String>,
        id: Option<String>,
        id_property: &str,
        unchanged: bool,
    ) -> PyResult<Self> {
        let Some(id) = id.or_else(|| email.clone()) else {
            return Err(PyValueError::new_err(
                "an UpsertResult needs the id it was matched on (or its email)",
            ));
        };
        Ok(UpsertResult {
            vid,
            is_new,
            email,
            id,
            id_property: id_property.to_owned(),
            unchanged,
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let email = match &self.email {
            Some(e) => PyString::new(py, e).repr()?.to_string(),
            None => "None".to_owned(),
        };
        let matched = match self.id_property.as_str() {
            "email" => String::new(),
            name => format!(
                ", id={}, id_property={}",
                PyString::new(py, &self.id).repr()?,
                PyString::new(py, name).repr()?
            ),
        };
        let unchanged = match self.unchanged {
            true => ", unchanged=True",
            false => "",
        };
        Ok(format!(
            "UpsertResult(vid={}, is_new={}, email={email}{matched}{unchanged})",
            self.vid,
            if self.is_new { "True" } else { "False" }
        ))
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (
            self.vid,
            self.is_new,
            self.email.clone(),
            self.id.clone(),
            self.id_property.clone(),
            self.unchanged,
        )
            .into_pyobject(py)
    }
}

/// An `UpsertResult` made in Rust: `email` is the id when matched by email.
pub fn native_result(
    vid: i64,
    is_new: bool,
    id: String,
    id_property: &str,
    email: Option<String>,
) -> UpsertResult {
    let email = match id_property {
        "email" => Some(id.clone()),
        _ => email,
    };
    UpsertResult {
        vid,
        is_new,
        email,
        id,
        id_property: id_property.to_owned(),
        unchanged: false,
    }
}

/// A record a bulk run did not write because its sync mode said not to: `code` says why
/// (`NOT_FOUND`: no contact has its id and the run updates only; `EXISTS`: its contact exists
/// and the run creates only; `NOTHING_TO_FILL`: every field it sets has a value at HubSpot and
/// the run fills empty fields only).
#[pyclass(frozen, eq, hash, get_all, module = "hubspot_upsert")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SkippedRecord {
    index: usize,
    id: String,
    code: String,
    reason: String,
}

#[pymethods]
impl SkippedRecord {
    #[new]
    fn new(index: usize, id: String, code: String, reason: String) -> Self {
        SkippedRecord {
            index,
            id,
            code,
            reason,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SkippedRecord(index={}, id={}, code={})",
            self.index,
            PyString::new(py, &self.id).repr()?,
            PyString::new(py, &self.code).repr()?
        ))
    }

    fn __str__(&self) -> String {
        format!(
            "record {} ({}): skipped, {}",
            self.index, self.id, self.reason
        )
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (
            self.index,
            self.id.clone(),
            self.code.clone(),
            self.reason.clone(),
        )
            .into_pyobject(py)
    }
}

/// Which outcomes a [`BulkResult`] keeps: `keep="all"` or `keep="failures"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    All,
    Failures,
}

impl Keep {
    pub fn parse(text: &str) -> PyResult<Keep> {
        match text {
            "all" => Ok(Keep::All),
            "failures" => Ok(Keep::Failures),
            other => Err(PyValueError::new_err(format!(
                "keep must be 'all' or 'failures', got '{other}'"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Keep::All => "all",
            Keep::Failures => "failures",
        }
    }
}

/// One record's fate, as kept in a [`BulkResult`].
pub enum Stored {
    Done {
        id: String,
        email: Option<String>,
        vid: i64,
        is_new: bool,
    },
    Skipped {
        id: String,
        code: &'static str,
        reason: &'static str,
    },
    /// Not sent: the sync state shows HubSpot holds these values on object `vid` already.
    Unchanged {
        id: String,
        email: Option<String>,
        vid: i64,
    },
    /// A dry run's plan for a record: counted, never kept.
    Planned { is_new: bool },
    Failed {
        email: Option<String>,
        error: Py<PyAny>,
    },
}

/// What `create_or_update_many` did: counts, and one outcome per record (or per record that
/// did not land, failed or skipped, with `keep="failures"`).
#[pyclass(frozen, module = "hubspot_upsert")]
pub struct BulkResult {
    #[pyo3(get)]
    pub(super) created: usize,
    #[pyo3(get)]
    pub(super) updated: usize,
    #[pyo3(get)]
    pub(super) failed: usize,
    /// Records the sync mode said not to write (see `SkippedRecord`).
    #[pyo3(get)]
    pub(super) skipped: usize,
    /// Records not sent because the sync state shows HubSpot holds them already.
    #[pyo3(get)]
    pub(super) unchanged: usize,
    #[pyo3(get)]
    pub(super) total: usize,
    /// What the records' ids are values of.
    pub(super) id_property: String,
    /// `(record index, outcome)`, in input order.
    pub(super) outcomes: Vec<(usize, Stored)>,
    pub(super) keep: Keep,
    /// Associations made after the records landed.
    #[pyo3(get)]
    pub(super) associated: usize,
    /// Records that landed and were not associated: `(record index, Failed)`, in input order.
    pub(super) unassociated: Vec<(usize, Stored)>,
    /// A mirror run's archived records (a dry run's: those it would archive), `(id, HubSpot
    /// id)`; set once, after the run, by the sync state.
    pub(super) archived: std::sync::OnceLock<Vec<(String, i64)>>,
}

impl BulkResult {
    fn outcome<'py>(
        &self,
        py: Python<'py>,
        index: usize,
        stored: &Stored,
    ) -> PyResult<Bound<'py, PyAny>> {
        match stored {
            Stored::Done {
                id,
                email,
                vid,
                is_new,
            } => {
                let result = super::native_result(
                    *vid,
                    *is_new,
                    id.clone(),
                    &self.id_property,
                    email.clone(),
                );
                Ok(Bound::new(py, result)?.into_any())
            }
            Stored::Unchanged { id, email, vid } => {
                let mut result =
                    super::native_result(*vid, false, id.clone(), &self.id_property, email.clone());
                result.unchanged = true;
                Ok(Bound::new(py, result)?.into_any())
            }
            Stored::Planned { .. } => Err(PyValueError::new_err("a planned record is not kept")),
            Stored::Skipped { id, code, reason } => Ok(Bound::new(
                py,
                SkippedRecord {
                    index,
                    id: id.clone(),
                    code: (*code).to_owned(),
                    reason: (*reason).to_owned(),
                },
            )?
            .into_any()),
            Stored::Failed { email, error } => errors::record_error(py, index, email, error),
        }
    }
}

#[pymethods]
impl BulkResult {
    fn __len__(&self) -> usize {
        self.outcomes.len()
    }

    /// The outcome of the `i`-th kept record: an `UpsertResult` or a `RecordError`.
    fn __getitem__<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let n = self.outcomes.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(PyIndexError::new_err("BulkResult index out of range"));
        }
        let (index, stored) = &self.outcomes[j as usize];
        self.outcome(py, *index, stored)
    }

    fn __iter__(slf: Bound<'_, Self>) -> BulkResultIter {
        BulkResultIter {
            result: slf.unbind(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `"all"` or `"failures"`: which outcomes this result kept.
    #[getter]
    fn keep(&self) -> &'static str {
        self.keep.as_str()
    }

    /// The failed records, as `RecordError(index, email, error)`, in input order.
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.outcomes
            .iter()
            .filter(|(_, s)| matches!(s, Stored::Failed { .. }))
            .map(|(i, s)| self.outcome(py, *i, s))
            .collect()
    }

    /// The records that landed and were not associated with the record their key names, as
    /// `RecordError`s (the code `ASSOCIATION_TARGET_NOT_FOUND`: no such record), in input order.
    #[getter]
    fn not_associated<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.unassociated
            .iter()
            .map(|(i, s)| self.outcome(py, *i, s))
            .collect()
    }

    /// Raises `BulkUpsertError` (a `HubSpotError`) when any record failed or was not
    /// associated.
    fn raise_for_errors(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let unassociated = this.unassociated.len();
        if this.failed == 0 && unassociated == 0 {
            return Ok(());
        }
        let py = slf.py();
        let mut failures = this.failures(py)?;
        failures.extend(this.not_associated(py)?);
        let mut shown = Vec::new();
        for f in failures.iter().take(3) {
            shown.push(f.str()?.to_string());
        }
        let more = if failures.len() > shown.len() {
            format!("; and {} more", failures.len() - shown.len())
        } else {
            String::new()
        };
        let not_associated = match unassociated {
            0 => String::new(),
            n => format!(", {n} landed but were not associated"),
        };
        let message = format!(
            "{} of {} records failed{not_associated}: {}{more}",
            this.failed,
            this.total,
            shown.join("; ")
        );
        Err(errors::bulk_upsert_error(py, message, slf.as_any())?)
    }

    /// One row per kept record (index, id, email, outcome, vid, code, message) as a pandas
    /// DataFrame; pandas is imported only here.
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        frames(slf, "to_pandas")
    }

    /// The same rows as a polars DataFrame.
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        frames(slf, "to_polars")
    }

    /// What a notebook shows: the counts and the first failures.
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        frames(slf, "repr_html")
    }

    /// A mirror run's archived records, `(id, HubSpot id)` (a dry run's: those it would
    /// archive); empty otherwise.
    #[getter]
    fn archived(&self) -> Vec<(String, i64)> {
        self.archived.get().cloned().unwrap_or_default()
    }

    /// Sets [`BulkResult::archived`], once.
    fn _set_archived(&self, archived: Vec<(String, i64)>) -> PyResult<()> {
        self.archived
            .set(archived)
            .map_err(|_| PyValueError::new_err("a result's archived records are set once"))
    }

    /// The skipped records, as `SkippedRecord`s, in input order (kept with `keep="all"`).
    #[getter]
    fn skips<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.outcomes
            .iter()
            .filter(|(_, s)| matches!(s, Stored::Skipped { .. }))
            .map(|(i, s)| self.outcome(py, *i, s))
            .collect()
    }

    fn __repr__(&self) -> String {
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(", skipped={n}"),
        };
        let unchanged = match self.unchanged {
            0 => String::new(),
            n => format!(", unchanged={n}"),
        };
        let associated = match (self.associated, self.unassociated.len()) {
            (0, 0) => String::new(),
            (made, 0) => format!(", associated={made}"),
            (made, not) => format!(", associated={made}, not_associated={not}"),
        };
        let archived = match self.archived.get().map_or(0, Vec::len) {
            0 => String::new(),
            n => format!(", archived={n}"),
        };
        format!(
            "BulkResult(total={}, created={}, updated={}{unchanged}{skipped}, failed={}{associated}{archived})",
            self.total, self.created, self.updated, self.failed
        )
    }
}

/// A function of `hubspot_upsert._frames` applied to a result.
fn frames<'py>(result: &Bound<'py, BulkResult>, function: &str) -> PyResult<Bound<'py, PyAny>> {
    result
        .py()
        .import("hubspot_upsert._frames")?
        .call_method1(function, (result,))
}

/// Iterates a [`BulkResult`]'s outcomes, making each Python object as it is reached.
#[pyclass(frozen, module = "hubspot_upsert._native")]
pub struct BulkResultIter {
    result: Py<BulkResult>,
    next: std::sync::atomic::AtomicUsize,
}

#[pymethods]
impl BulkResultIter {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let result = self.result.get();
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match result.outcomes.get(i) {
            Some((index, stored)) => result.outcome(py, *index, stored).map(Some),
            None => Ok(None),
        }
    }
}
