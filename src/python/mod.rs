//! The binding layer: every `pyo3` import of the crate is below this folder. It reads Python
//! arguments into owned Rust values, runs the core with the GIL released, and turns results and
//! errors back into Python objects.

pub mod bulk;
pub mod converter;
pub mod convert;
pub mod errors;
pub mod hooks;
pub mod options;
pub mod results;
pub mod run_options;
pub mod state;

pub use results::native_result;

use pyo3::prelude::*;

/// Adds a note to an exception: `add_note` on Python 3.11+; on 3.10, which has no notes, the
/// same `__notes__` list is set (3.10's tracebacks do not print it, but handlers can read it).
pub fn add_note(exception: &Bound<'_, pyo3::exceptions::PyBaseException>, note: &str) {
    if exception.hasattr("add_note").unwrap_or(false) {
        let _ = exception.call_method1("add_note", (note,));
        return;
    }
    let notes = match exception.getattr("__notes__") {
        Ok(notes) => notes,
        Err(_) => {
            let list = pyo3::types::PyList::empty(exception.py()).into_any();
            let _ = exception.setattr("__notes__", &list);
            list
        }
    };
    let _ = notes.call_method1("append", (note,));
}

#[pyo3::pymodule]
mod _native {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::{Arc, Mutex, Weak};

    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use super::convert::{self, ConvertOptions};
    use super::errors;
    use super::hooks::PyHooks;
    use super::results::Keep;
    use crate::client::Client as CoreClient;
    use crate::context::Hooks;
    use crate::error::Stop;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        let kw = PyDict::new(m.py());
        kw.set_item("before", m.getattr("_release_before_fork")?)?;
        m.py()
            .import("os")?
            .call_method("register_at_fork", (), Some(&kw))?;
        Ok(())
    }

    /// Every client of this process, for the fork hook.
    static CLIENTS: Mutex<Vec<Weak<CoreClient>>> = Mutex::new(Vec::new());

    /// Run by `os.fork()` before it forks: idle clients stop their I/O threads, so that the
    /// process forks without them (and Python 3.12+ has no threads to warn about). A client in
    /// use by another thread keeps its thread; the child builds its own either way.
    /// An object type as HubSpot's paths name it (`"0-2"` and `"Company"` are `"companies"`);
    /// ValueError for a name no path can hold.
    #[pyfunction]
    fn object_name(text: &str) -> PyResult<String> {
        crate::api::ObjectType::parse(text)
            .map(|o| o.name().to_owned())
            .map_err(errors::to_py)
    }

    #[pyfunction]
    fn _release_before_fork(py: Python<'_>) {
        let clients: Vec<Arc<CoreClient>> = {
            let mut list = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|c| c.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        py.detach(|| {
            for client in clients {
                client.release_if_idle();
            }
        });
    }

    const INTERRUPTED_NOTE: &str = "hubspot_upsert: interrupted while talking to HubSpot; \
         a request in flight may still have been applied";

    /// Runs `work` with the GIL released, lending it hooks that run Python's signal handlers
    /// and log to `logging`. A handler's exception is raised unchanged (with a note); a panic
    /// becomes a `HubSpotError` instead of reaching the caller as `PanicException`.
    fn detached<T: Send>(
        py: Python<'_>,
        what: &str,
        work: impl FnOnce(&dyn Hooks) -> crate::error::Result<T> + Send,
    ) -> PyResult<T> {
        let hooks = PyHooks::new(py)?;
        match py.detach(|| catch_unwind(AssertUnwindSafe(|| work(&hooks)))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.stop() == Some(Stop::Signal) => {
                let err = errors::to_py(error);
                super::add_note(err.value(py), INTERRUPTED_NOTE);
                Err(err)
            }
            Ok(Err(error)) => Err(errors::to_py(error)),
            Err(_) => Err(errors::internal(py, what)),
        }
    }

    /// An id an archive did not archive, and the exception that says why.
    type NotArchived = (i64, Py<PyAny>);

    #[pymodule_export]
    use super::results::UpsertResult;

    #[pymodule_export]
    use super::results::BulkResult;

    #[pymodule_export]
    use super::results::SkippedRecord;

    #[pymodule_export]
    use super::converter::Converter;

    #[pymodule_export]
    use super::run_options::BulkOptions;

    /// An upsert running on the client's runtime; `cancel()` drops its request in flight.
    #[pyclass(frozen, module = "hubspot_upsert._native")]
    pub struct Task {
        abort: tokio::task::AbortHandle,
    }

    #[pymethods]
    impl Task {
        fn cancel(&self) {
            self.abort.abort();
        }
    }

    /// The `email` an upsert sets, if it sets one.
    fn email_set(properties: &[(String, String)]) -> Option<String> {
        properties
            .iter()
            .find(|(name, _)| name == "email")
            .map(|(_, value)| value.clone())
    }

    /// The native client behind `hubspot_upsert.HubSpot`: one connection pool, shareable
    /// between threads.
    #[pyclass(frozen, module = "hubspot_upsert._native")]
    pub struct Client {
        core: Arc<CoreClient>,
        options: ConvertOptions,
    }

    /// An upsert's arguments, read: the object type, the id, the properties as HubSpot text.
    type Upsert = (crate::api::ObjectType, String, Vec<(String, String)>);

    impl Client {
        /// An upsert's arguments as owned Rust values: the id (trimmed and checked: an
        /// address unless `id_property` says otherwise) and the properties as HubSpot text;
        /// refused here, before anything is sent.
        fn read_upsert(
            &self,
            object: &str,
            id: &Bound<'_, PyAny>,
            id_property: &str,
            properties: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Upsert> {
            let matching = super::run_options::plain(object, id_property)?;
            let what = match matching.by_email() {
                true => "email",
                false => "id",
            };
            let int = id.is_instance_of::<pyo3::types::PyInt>()
                && !id.is_instance_of::<pyo3::types::PyBool>();
            if !id.is_instance_of::<pyo3::types::PyString>() && (matching.by_email() || !int) {
                let wanted = match matching.by_email() {
                    true => "a str",
                    false => "a str or an int",
                };
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "{what} must be {wanted}, got {}",
                    id.get_type().name()?
                )));
            }
            let id = super::bulk::read_id(id, None, &matching, self.options)?;
            let properties = convert::properties(properties, self.options)?;
            Ok((matching.object, id, properties))
        }
    }

    #[pymethods]
    impl Client {
        /// `options` holds every keyword option of `HubSpot(...)` by name (see `options.rs`).
        #[new]
        fn new(
            py: Python<'_>,
            token: &Bound<'_, PyAny>,
            options: &Bound<'_, PyDict>,
        ) -> PyResult<Self> {
            let (config, convert) = super::options::read(token, options)?;
            // Reading a ca_bundle is file I/O: done with the GIL released.
            let core = Arc::new(
                py.detach(|| CoreClient::new(config))
                    .map_err(errors::to_py)?,
            );
            CLIENTS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::downgrade(&core));
            Ok(Client {
                core,
                options: convert,
            })
        }

        #[getter]
        fn base_url(&self) -> &str {
            self.core.base_url()
        }

        /// Stops the client's I/O thread and closes its connections, unless a call is using
        /// them (then False); the next call builds them again.
        fn close(&self, py: Python<'_>) -> bool {
            let core = self.core.clone();
            py.detach(move || core.release_if_idle())
        }

        /// The id of the portal the credentials belong to (one request, then remembered).
        fn portal_id(&self, py: Python<'_>) -> PyResult<i64> {
            let core = &self.core;
            detached(py, "portal id", |hooks| core.portal_id(hooks))
        }

        /// Archives the `object` records with these HubSpot ids, 100 a request (a mirror
        /// run's last step): `(archived ids, [(id, exception)])`.
        #[pyo3(signature = (ids, *, object="contacts"))]
        fn archive(
            &self,
            py: Python<'_>,
            ids: Vec<i64>,
            object: &str,
        ) -> PyResult<(Vec<i64>, Vec<NotArchived>)> {
            let object = crate::api::ObjectType::parse(object).map_err(errors::to_py)?;
            let hooks = Arc::new(PyHooks::new(py)?);
            let log: Arc<dyn crate::context::Log> = hooks.clone();
            let core = &self.core;
            let done = detached(py, "archive", |_| core.archive(&object, &ids, &*hooks, log))?;
            let failed = done
                .failed
                .into_iter()
                .map(|(id, e)| (id, errors::to_py(e).into_value(py).into_any()))
                .collect();
            Ok((done.archived, failed))
        }

        /// `(max, window_seconds)` of the limit the client paces itself by, if it knows one.
        #[getter]
        fn rate_limit(&self) -> Option<(u32, f64)> {
            self.core
                .known_rate_limit()
                .map(|l| (l.max, l.window.as_secs_f64()))
        }

        /// Creates or updates the contact with this id; see `HubSpot.create_or_update`.
        #[pyo3(signature = (id, properties=None, *, id_property="email", object="contacts"))]
        fn create_or_update(
            &self,
            py: Python<'_>,
            id: &Bound<'_, PyAny>,
            properties: Option<&Bound<'_, PyAny>>,
            id_property: &str,
            object: &str,
        ) -> PyResult<UpsertResult> {
            let (object, id, properties) = self.read_upsert(object, id, id_property, properties)?;
            let id_property = id_property.trim();
            let core = &self.core;
            let outcome = detached(py, "upsert", |hooks| {
                core.create_or_update(&object, &id, id_property, &properties, hooks)
            })?;
            let email = email_set(&properties);
            Ok(super::native_result(
                outcome.vid,
                outcome.is_new,
                id,
                id_property,
                email,
            ))
        }

        /// The same upsert, sent through the I/O thread's pool as the async face's are: what
        /// the calling thread's transport is measured against (the benchmark's build only).
        #[cfg(feature = "bench")]
        #[pyo3(signature = (id, properties=None))]
        fn create_or_update_via_io_thread(
            &self,
            py: Python<'_>,
            id: &Bound<'_, PyAny>,
            properties: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<bool> {
            let (object, id, properties) = self.read_upsert("contacts", id, "email", properties)?;
            let core = &self.core;
            let outcome = detached(py, "upsert", |hooks| {
                core.create_or_update_via_io_thread(&object, &id, "email", &properties, hooks)
            })?;
            Ok(outcome.is_new)
        }

        /// Starts the upsert as a task on the client's runtime and returns at once; when it
        /// ends, `on_done(ok, value)` is called (from the runtime's thread, with the GIL) with
        /// the `UpsertResult` or the exception. The returned `Task` cancels it.
        #[pyo3(signature = (id, properties, on_done, *, id_property="email", object="contacts"))]
        fn create_or_update_async(
            &self,
            py: Python<'_>,
            id: &Bound<'_, PyAny>,
            properties: Option<&Bound<'_, PyAny>>,
            on_done: Py<PyAny>,
            id_property: &str,
            object: &str,
        ) -> PyResult<Task> {
            let (object, id, properties) = self.read_upsert(object, id, id_property, properties)?;
            let id_property = id_property.trim().to_owned();
            let log: Arc<dyn crate::context::Log> = Arc::new(PyHooks::new(py)?);
            let shown = (id.clone(), id_property.clone(), email_set(&properties));
            let done = move |outcome: crate::error::Result<crate::api::Landed>| {
                Python::attach(|py| {
                    let (ok, value) = match outcome {
                        Ok(o) => match Bound::new(
                            py,
                            super::native_result(o.vid, o.is_new, shown.0, &shown.1, shown.2),
                        ) {
                            Ok(result) => (true, result.into_any().unbind()),
                            Err(e) => (false, e.into_value(py).into_any()),
                        },
                        Err(error) => (false, errors::to_py(error).into_value(py).into_any()),
                    };
                    // The loop may be closed by now: nobody waits for the answer then.
                    if let Err(e) = on_done.call1(py, (ok, value)) {
                        e.write_unraisable(py, None);
                    }
                })
            };
            let abort = py
                .detach(|| {
                    self.core
                        .spawn_create_or_update(object, id, id_property, properties, log, done)
                })
                .map_err(errors::to_py)?;
            Ok(Task { abort })
        }

        /// A converter with this client's options (`missing`, `assume_utc`): what
        /// `HubSpot.prepare` uses.
        #[getter]
        fn converter(&self) -> super::converter::Converter {
            super::converter::Converter {
                options: self.options,
            }
        }

        /// Checks records as `create_or_update_many` would and sends no write; see
        /// `HubSpot.check_many`.
        #[pyo3(signature = (records, options, *, definitions, state=None, object="contacts"))]
        fn check_many<'py>(
            &self,
            py: Python<'py>,
            records: &Bound<'py, PyAny>,
            options: &BulkOptions,
            definitions: bool,
            state: Option<&Bound<'py, PyAny>>,
            object: &str,
        ) -> PyResult<Bound<'py, BulkResult>> {
            // With the definitions, the associations' are checked too.
            let run = options
                .run(records, object, false, self.options, Keep::Failures)?
                .with_state(state)
                .through(definitions.then_some(&self.core));
            run.collect(py, |source, sink, hooks, _, matching, ledger| {
                self.core
                    .check_many(source, sink, hooks, definitions, &matching, ledger)
            })
        }

        /// Creates or updates many contacts with batch requests; see
        /// `HubSpot.create_or_update_many`.
        #[pyo3(signature = (records, options, *, progress=None, state=None, dry_run=false, object="contacts"))]
        #[allow(clippy::too_many_arguments)]
        fn create_or_update_many<'py>(
            &self,
            py: Python<'py>,
            records: &Bound<'py, PyAny>,
            options: &BulkOptions,
            progress: Option<&Bound<'py, PyAny>>,
            state: Option<&Bound<'py, PyAny>>,
            dry_run: bool,
            object: &str,
        ) -> PyResult<Bound<'py, BulkResult>> {
            let max_in_flight = options.max_in_flight();
            let run = options
                .run(records, object, dry_run, self.options, options.keep())?
                .with_progress(progress)
                .with_state(state)
                .through(Some(&self.core));
            run.collect(py, |source, sink, hooks, log, matching, ledger| {
                self.core.create_or_update_many(
                    source,
                    sink,
                    hooks,
                    log,
                    matching,
                    max_in_flight,
                    ledger,
                )
            })
        }
    }
}
