//! `Converter`: records converted as a client would send them, with no token and no request.
//! The command's dry run without a token and the benchmark of conversion use it; a client's
//! `prepare` is its converter's.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::bulk;
use super::convert::ConvertOptions;
use super::results::{BulkResult, Keep};
use super::run_options::{self, BulkOptions};
use crate::value::MissingPolicy;

#[pyclass(frozen, module = "hubspot_upsert._native")]
pub struct Converter {
    pub(super) options: ConvertOptions,
}

#[pymethods]
impl Converter {
    /// `missing` and `assume_utc` as `HubSpot(...)` takes them.
    #[new]
    #[pyo3(signature = (*, missing="skip", assume_utc=false))]
    fn new(missing: &str, assume_utc: bool) -> PyResult<Self> {
        let missing = match missing {
            "skip" => MissingPolicy::Skip,
            "clear" => MissingPolicy::Clear,
            other => {
                return Err(PyValueError::new_err(format!(
                    "missing must be 'skip' or 'clear', got '{other}'"
                )))
            }
        };
        Ok(Converter {
            options: ConvertOptions {
                missing,
                assume_utc,
            },
        })
    }

    /// One record as `create_or_update_many` would send it: `(id, {property: text})`; see
    /// `HubSpot.prepare`.
    #[pyo3(signature = (record, *, email_field, id_property="email", object="contacts"))]
    fn prepare<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'py, PyAny>,
        email_field: &str,
        id_property: &str,
        object: &str,
    ) -> PyResult<(String, Bound<'py, PyDict>)> {
        let email_field = bulk::field_name(email_field, "email_field")?;
        let matching = run_options::plain(object, id_property)?;
        let input = bulk::read_record(record, email_field, &matching, self.options)?;
        let properties = PyDict::new(py);
        for (name, value) in input.properties {
            properties.set_item(name, value)?;
        }
        Ok((input.id, properties))
    }

    /// Converts every record and keeps the ones that cannot be sent, each with the error
    /// naming its value (a `BulkResult` of failures); nothing is sent.
    /// With a sync state's run (`state`), every record has an outcome: refused, unchanged,
    /// or planned (created: new to the state; updated: changed). `options` as a client's
    /// `check_many` takes them (the id property and field, the associations).
    #[pyo3(signature = (records, options, *, state=None, object="contacts"))]
    fn check_many<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        options: &BulkOptions,
        state: Option<&Bound<'py, PyAny>>,
        object: &str,
    ) -> PyResult<Bound<'py, BulkResult>> {
        let run = options
            .run(records, object, false, self.options, Keep::Failures)?
            .with_state(state);
        run.collect(py, |source, sink, _, _, matching, ledger| {
            crate::bulk::check(source, sink, None, &matching, ledger)
        })
    }

    /// Converts records to batch request bodies and sends nothing: `(converted, refused,
    /// request body bytes)`. What the benchmark of conversion measures (its build only).
    #[cfg(feature = "bench")]
    #[pyo3(signature = (records, *, email_field))]
    fn convert_many(
        &self,
        records: &Bound<'_, PyAny>,
        email_field: &str,
    ) -> PyResult<(usize, usize, usize)> {
        bulk::convert_only(records, email_field, self.options)
    }
}
