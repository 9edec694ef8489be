//! The [`Hooks`] a Python call lends the core: Python's signal handlers run between wait
//! slices (so Ctrl-C and task timeouts work during requests and back-off waits), and log
//! records go to the `hubspot_upsert` logger of Python's `logging`.

use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::context::{Hooks, Level, Log};
use crate::error::{Error, Result};

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
    /// The exception a signal handler raised, to be re-raised unchanged.
    interrupt: Mutex<Option<PyErr>>,
}

impl PyHooks {
    /// Made while attached, before the call detaches.
    pub fn new(py: Python<'_>) -> PyResult<Self> {
        let threshold = logger(py)?
            .call_method0(intern!(py, "getEffectiveLevel"))?
            .extract()?;
        Ok(PyHooks {
            threshold,
            interrupt: Mutex::new(None),
        })
    }

    /// The signal handler's exception, if a wait was interrupted.
    pub fn take_interrupt(&self) -> Option<PyErr> {
        self.interrupt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl Hooks for PyHooks {
    fn check(&self) -> Result<()> {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => Ok(()),
            Err(e) => {
                *self.interrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Err(Error::Interrupted)
            }
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
