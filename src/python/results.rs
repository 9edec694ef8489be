//! `UpsertResult`, the value one upsert returns.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// The result of one upsert: the contact's id, whether it was created, and its address.
#[pyclass(frozen, eq, hash, get_all, module = "hubspot_upsert")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UpsertResult {
    vid: i64,
    is_new: bool,
    email: String,
}

#[pymethods]
impl UpsertResult {
    #[new]
    fn new(vid: i64, is_new: bool, email: String) -> Self {
        UpsertResult { vid, is_new, email }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let email = PyString::new(py, &self.email).repr()?;
        Ok(format!(
            "UpsertResult(vid={}, is_new={}, email={email})",
            self.vid,
            if self.is_new { "True" } else { "False" }
        ))
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (self.vid, self.is_new, self.email.clone()).into_pyobject(py)
    }
}

/// An `UpsertResult` made in Rust.
pub fn native_result(vid: i64, is_new: bool, email: String) -> UpsertResult {
    UpsertResult { vid, is_new, email }
}
