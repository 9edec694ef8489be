//! The [`Hooks`] a Python call lends the core: Python's signal handlers run between wait
//! slices (so Ctrl-C and task timeouts work during requests and back-off waits), and log
//! records go to the `hubspot_upsert` logger of Python's `logging`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::context::{Hooks, Level, Log};
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

pub struct PyHooks {
    /// The logger's effective level when the call began.
    threshold: i32,
}

impl PyHooks {
    /// Made while attached, before the call detaches.
    pub fn new(py: Python<'_>) -> PyResult<Self> {
        let threshold = logger(py)?
            .call_method0(intern!(py, "getEffectiveLevel"))?
            .extract()?;
        Ok(PyHooks { threshold })
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
        Python::attach(|py| {
            if let Ok(logger) = logger(py) {
                // A failing handler must not fail the upsert; logging reports its own errors.
                let _ = logger.call_method1(intern!(py, "log"), (python_level(level), message));
            }
        })
    }
}
