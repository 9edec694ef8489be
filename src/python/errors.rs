//! The one place where core errors become Python exceptions.
//!
//! The public exception classes are ordinary Python classes in `hubspot_upsert._errors`, with
//! real attributes; they are looked up once and instantiated here with keyword arguments.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

use crate::error::{ApiError, ApiErrorKind, Error, FailureKind};

const ERRORS_MODULE: &str = "hubspot_upsert._errors";

static HUBSPOT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VALIDATION: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static AUTHENTICATION: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PERMISSION: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFLICT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static RATE_LIMIT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SERVER: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TRANSPORT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FIELD_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static RECORD_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BULK_UPSERT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, ERRORS_MODULE, name)
}

/// Turns a core error into the matching Python exception.
pub fn to_py(error: Error) -> PyErr {
    Python::attach(|py| build(py, error).unwrap_or_else(|failure| failure))
}

/// An unexpected failure inside the core, reported as a `HubSpotError` rather than a
/// `PanicException` (which `except Exception` does not catch).
pub fn internal(py: Python<'_>, what: &str) -> PyErr {
    let message = format!("internal error in hubspot_upsert ({what}); please report it");
    match class(py, &HUBSPOT_ERROR, "HubSpotError").and_then(|c| c.call1((message,))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// A bulk run's `RecordError(index, email, error)` for a record that failed.
pub fn record_error<'py>(
    py: Python<'py>,
    index: usize,
    email: &Option<String>,
    error: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    class(py, &RECORD_ERROR, "RecordError")?.call1((index, email.clone(), error.clone_ref(py)))
}

/// `BulkUpsertError(message, result=...)`, raised by `BulkResult.raise_for_errors`.
pub fn bulk_upsert_error(
    py: Python<'_>,
    message: String,
    result: &Bound<'_, PyAny>,
) -> PyResult<PyErr> {
    let kw = PyDict::new(py);
    kw.set_item("result", result)?;
    let cls = class(py, &BULK_UPSERT_ERROR, "BulkUpsertError")?;
    Ok(PyErr::from_value(cls.call((message,), Some(&kw))?))
}

fn build(py: Python<'_>, error: Error) -> PyResult<PyErr> {
    let (cls, message, kwargs) = match error {
        Error::InvalidInput(message) => return Ok(PyValueError::new_err(message)),
        Error::Transport {
            message,
            kind,
            attempts,
        } => {
            let cls = if kind == FailureKind::Timeout {
                class(py, &TIMEOUT, "RequestTimeoutError")?
            } else {
                class(py, &TRANSPORT, "TransportError")?
            };
            let kw = PyDict::new(py);
            kw.set_item("attempts", attempts)?;
            (cls, message, kw)
        }
        Error::Api(api) => api_error(py, *api)?,
        Error::Refused {
            message,
            status,
            correlation_id,
            field,
            also,
        } => {
            let kw = PyDict::new(py);
            kw.set_item("status", status)?;
            kw.set_item("category", "VALIDATION_ERROR")?;
            kw.set_item("correlation_id", correlation_id)?;
            kw.set_item("attempts", u32::from(status.is_some()))?;
            let field_error = class(py, &FIELD_ERROR, "FieldError")?;
            let list = PyList::empty(py);
            for f in std::iter::once(*field).chain(also) {
                list.append(field_error.call1((f.name, f.code, f.message))?)?;
            }
            kw.set_item("errors", list)?;
            (class(py, &VALIDATION, "ValidationError")?, message, kw)
        }
        Error::RateWait { message, attempts } => {
            let kw = PyDict::new(py);
            kw.set_item("attempts", attempts)?;
            (class(py, &RATE_LIMIT, "RateLimitError")?, message, kw)
        }
        error @ (Error::NotSent { .. } | Error::Unanswered { .. }) => {
            // A code of their own, which a record's failure shows: never sent (safe to send
            // again), or in flight when the run stopped (it may have been applied).
            let unanswered = matches!(error, Error::Unanswered { .. });
            let kw = PyDict::new(py);
            kw.set_item("attempts", u32::from(unanswered))?;
            kw.set_item(
                "category",
                if unanswered { "UNANSWERED" } else { "NOT_SENT" },
            )?;
            (
                class(py, &TRANSPORT, "TransportError")?,
                error.to_string(),
                kw,
            )
        }
        Error::Internal(what) => return Ok(internal(py, &what)),
        // The caller's own exception, raised unchanged.
        Error::Caller { raised, .. } => {
            return Ok(match raised.get::<PyErr>() {
                Some(e) => e.clone_ref(py),
                None => internal(py, "a stop without its exception"),
            })
        }
    };
    Ok(PyErr::from_value(cls.call((message,), Some(&kwargs))?))
}

fn api_error(
    py: Python<'_>,
    e: ApiError,
) -> PyResult<(&Bound<'_, PyType>, String, Bound<'_, PyDict>)> {
    let message = e.message();
    let kw = PyDict::new(py);
    kw.set_item("status", e.status)?;
    kw.set_item("category", e.category)?;
    kw.set_item("correlation_id", &e.correlation_id)?;
    kw.set_item("attempts", e.attempts)?;
    let body = match &e.body {
        Some(json) => pythonize::pythonize(py, json).map_err(PyErr::from)?,
        None => py.None().into_bound(py),
    };
    kw.set_item("body", body)?;
    let cls = match e.kind {
        ApiErrorKind::Validation => {
            let field_error = class(py, &FIELD_ERROR, "FieldError")?;
            let list = PyList::empty(py);
            for f in e.errors {
                list.append(field_error.call1((f.name, f.code, f.message))?)?;
            }
            kw.set_item("errors", list)?;
            class(py, &VALIDATION, "ValidationError")?
        }
        ApiErrorKind::Authentication => class(py, &AUTHENTICATION, "AuthenticationError")?,
        ApiErrorKind::PermissionDenied => {
            kw.set_item("required_scopes", e.required_scopes)?;
            class(py, &PERMISSION, "PermissionDeniedError")?
        }
        ApiErrorKind::NotFound => class(py, &NOT_FOUND, "NotFoundError")?,
        ApiErrorKind::Conflict => {
            kw.set_item("email", e.conflicting_email)?;
            kw.set_item("existing_vid", e.existing_vid)?;
            class(py, &CONFLICT, "EmailConflictError")?
        }
        ApiErrorKind::RateLimit => {
            kw.set_item("policy", e.policy)?;
            class(py, &RATE_LIMIT, "RateLimitError")?
        }
        ApiErrorKind::Server => class(py, &SERVER, "ServerError")?,
    };
    Ok((cls, message, kw))
}
