//! The [`Hooks`] a Python call lends the core: Python's signal handlers run between wait
//! slices (so Ctrl-C and task timeouts work during requests and back-off waits), and log
//! records go to the `hubspot_upsert` logger of Python's `logging`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use pyo3::types::PyDict;

use crate::context::{Field, Hooks, Level, Log, RequestDone};
use crate::error::{Error, Raised, Result, Stop};

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("logging")?
                    .call_method1("getLogger", ("hubspot_upsert",))?
                    .unbind(),
            )
        })
        .map(|l| l.bind(py))
}

fn python_level(level: Level) -> i32 {
    match level {
        Level::Debug => 10,
        Level::Info => 20,
        Level::Warning => 30,
    }
}

static RECORDER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `hubspot_upsert._telemetry.recorder()`: what records this call's requests (None without
/// OpenTelemetry), in the context of the calling thread (the span of a run, say).
fn recorder(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    let make = RECORDER.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("hubspot_upsert._telemetry")?
                .getattr("recorder")?
                .unbind(),
        )
    })?;
    let made = make.bind(py).call0()?;
    Ok((!made.is_none()).then(|| made.unbind()))
}

pub struct PyHooks {
    /// The logger's effective level when the call began.
    threshold: i32,
    /// What records each request, with OpenTelemetry.
    recorder: Option<Py<PyAny>>,
}

impl PyHooks {
    /// Made while attached, before the call detaches.
    pub fn new(py: Python<'_>) -> PyResult<Self> {
        let threshold = logger(py)?
            .call_method0(intern!(py, "getEffectiveLevel"))?
            .extract()?;
        Ok(PyHooks {
            threshold,
            recorder: recorder(py)?,
        })
    }
}

impl Hooks for PyHooks {
    /// A signal handler's exception stops the call, carried in the error to be raised
    /// unchanged.
    fn check(&self) -> Result<()> {
        Python::attach(|py| {
            py.check_signals()
                .map_err(|e| Error::caller(Stop::Signal, Raised::new(e)))
        })
    }
}

impl Log for PyHooks {
    fn enabled(&self, level: Level) -> bool {
        python_level(level) >= self.threshold
    }

    fn log(&self, level: Level, message: &str) {
        self.log_with(level, message, &[])
    }

    fn log_with(&self, level: Level, message: &str, fields: &[(&str, Field<'_>)]) {
        Python::attach(|py| {
            let Ok(logger) = logger(py) else { return };
            let kw = PyDict::new(py);
            if !fields.is_empty() {
                let extra = PyDict::new(py);
                for (name, value) in fields {
                    let _ = match value {
                        Field::Text(text) => extra.set_item(name, text),
                        Field::Int(n) => extra.set_item(name, n),
                        Field::Float(x) => extra.set_item(name, x),
                    };
                }
                let _ = kw.set_item(intern!(py, "extra"), extra);
            }
            // A failing handler must not fail the upsert; logging reports its own errors.
            let _ = logger.call_method(
                intern!(py, "log"),
                (python_level(level), message),
                Some(&kw),
            );
        })
    }

    fn observes(&self) -> bool {
        self.recorder.is_some()
    }

    fn request(&self, done: &RequestDone<'_>) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let nanos = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        let start = nanos(done.started);
        let end = start + done.took.as_nanos() as u64;
        Python::attach(|py| {
            let args = (
                done.method,
                done.path,
                done.status,
                done.correlation_id,
                done.attempts,
                done.throttled,
                start,
                end,
                done.error.as_deref(),
            );
            // Telemetry must not fail the upsert: what it raises is reported, not raised.
            if let Err(e) = recorder.bind(py).call_method1(intern!(py, "request"), args) {
                e.write_unraisable(py, Some(recorder.bind(py)));
            }
        })
    }
}
