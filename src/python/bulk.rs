//! `create_or_update_many`: records stream in from a Python iterator, become batches of at
//! most 100 distinct emails, and go to HubSpot on a few worker threads that never hold the GIL.
//!
//! The calling thread pulls and converts records (attached), hands batches to the workers and
//! collects their outcomes (detached while it waits, checking Python's signal handlers every
//! 50 ms), and reports progress. Two records with the same email are merged into one input
//! (the later record's values win) when they meet in one batch; a record whose email is in a
//! batch still in flight waits for that batch, so the later record is always applied last.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::convert::{self, ConvertOptions};
use super::errors;
use super::hooks::PyHooks;
use crate::api::{BatchInput, V3_BATCH_MAX};
use crate::client::{Client as CoreClient, Hooks, InputOutcome, Level};
use crate::error::{Error, Result as CoreResult};

/// One record's fate, as kept in a [`BulkResult`].
pub enum Stored {
    Done {
        email: String,
        vid: i64,
        is_new: bool,
    },
    Failed {
        email: Option<String>,
        error: Py<PyAny>,
    },
}

/// What `create_or_update_many` did: counts, and one outcome per record (or per failed
/// record only, with `keep="failures"`).
#[pyclass(frozen, module = "hubspot_upsert")]
pub struct BulkResult {
    #[pyo3(get)]
    created: usize,
    #[pyo3(get)]
    updated: usize,
    #[pyo3(get)]
    failed: usize,
    #[pyo3(get)]
    total: usize,
    /// `(record index, outcome)`, in input order.
    outcomes: Vec<(usize, Stored)>,
    #[pyo3(get)]
    keep: &'static str,
}

fn record_error<'py>(
    py: Python<'py>,
    index: usize,
    email: &Option<String>,
    error: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let cls = py
        .import("hubspot_upsert._errors")?
        .getattr("RecordError")?;
    cls.call1((index, email.clone(), error.clone_ref(py)))
}

impl BulkResult {
    fn outcome<'py>(
        &self,
        py: Python<'py>,
        index: usize,
        stored: &Stored,
    ) -> PyResult<Bound<'py, PyAny>> {
        match stored {
            Stored::Done { email, vid, is_new } => {
                Ok(Bound::new(py, super::native_result(*vid, *is_new, email.clone()))?.into_any())
            }
            Stored::Failed { email, error } => record_error(py, index, email, error),
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

    /// The failed records, as `RecordError(index, email, error)`, in input order.
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.outcomes
            .iter()
            .filter(|(_, s)| matches!(s, Stored::Failed { .. }))
            .map(|(i, s)| self.outcome(py, *i, s))
            .collect()
    }

    /// Raises `BulkUpsertError` (a `HubSpotError`) when any record failed.
    fn raise_for_errors(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        if this.failed == 0 {
            return Ok(());
        }
        let py = slf.py();
        let failures = this.failures(py)?;
        let mut shown = Vec::new();
        for f in failures.iter().take(3) {
            shown.push(f.str()?.to_string());
        }
        let more = if this.failed > shown.len() {
            format!("; and {} more", this.failed - shown.len())
        } else {
            String::new()
        };
        let message = format!(
            "{} of {} records failed: {}{more}",
            this.failed,
            this.total,
            shown.join("; ")
        );
        let cls = py
            .import("hubspot_upsert._errors")?
            .getattr("BulkUpsertError")?;
        let kw = PyDict::new(py);
        kw.set_item("result", slf)?;
        Err(PyErr::from_value(cls.call((message,), Some(&kw))?))
    }

    fn __repr__(&self) -> String {
        format!(
            "BulkResult(total={}, created={}, updated={}, failed={})",
            self.total, self.created, self.updated, self.failed
        )
    }
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

/// A batch as it is being formed, and then in flight.
#[derive(Default)]
struct Forming {
    inputs: Vec<BatchInput>,
    /// The record indexes merged into each input, in input order.
    members: Vec<Vec<usize>>,
    by_email: HashMap<String, usize>,
    /// In-flight batches that hold an email of this one: it waits for them.
    waits_for: HashSet<usize>,
}

struct Job {
    id: usize,
    inputs: Vec<BatchInput>,
}

struct Finished {
    id: usize,
    result: CoreResult<Vec<InputOutcome>>,
}

/// Hooks for the workers: they stop when the caller says so, and log like the caller.
struct WorkerHooks<'a> {
    stop: &'a AtomicBool,
    caller: &'a PyHooks,
}

impl Hooks for WorkerHooks<'_> {
    fn check(&self) -> CoreResult<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
    fn enabled(&self, level: Level) -> bool {
        self.caller.enabled(level)
    }
    fn log(&self, level: Level, message: &str) {
        self.caller.log(level, message)
    }
}

/// Why a run ended early.
enum Stop {
    Signal(PyErr),
    Failure(PyErr),
}

struct Run<'a> {
    keep_all: bool,
    created: usize,
    updated: usize,
    failed: usize,
    total: usize,
    outcomes: Vec<(usize, Stored)>,
    in_flight: HashMap<usize, Vec<(String, Vec<usize>)>>,
    in_flight_emails: HashMap<String, usize>,
    progress: Option<&'a Bound<'a, PyAny>>,
    done: usize,
}

impl Run<'_> {
    fn store(&mut self, index: usize, stored: Stored) {
        match &stored {
            Stored::Done { is_new: true, .. } => self.created += 1,
            Stored::Done { .. } => self.updated += 1,
            Stored::Failed { .. } => self.failed += 1,
        }
        self.done += 1;
        if self.keep_all || matches!(stored, Stored::Failed { .. }) {
            self.outcomes.push((index, stored));
        }
    }

    fn report_progress(&self) -> PyResult<()> {
        if let Some(cb) = self.progress {
            cb.call1((self.done,))?;
        }
        Ok(())
    }

    /// Records what a finished batch did. A failure of the whole batch marks its records
    /// with that error and is returned.
    fn finish(&mut self, py: Python<'_>, finished: Finished) -> PyResult<Option<PyErr>> {
        let members = self.in_flight.remove(&finished.id).unwrap_or_default();
        for (email, _) in &members {
            let key = email.to_lowercase();
            if self.in_flight_emails.get(&key) == Some(&finished.id) {
                self.in_flight_emails.remove(&key);
            }
        }
        let systemic = match finished.result {
            Ok(outcomes) => {
                for ((email, indexes), outcome) in members.into_iter().zip(outcomes) {
                    match outcome {
                        InputOutcome::Done { vid, is_new } => {
                            for (k, index) in indexes.into_iter().enumerate() {
                                // Merged duplicates: the first one created the contact, if anyone did.
                                let is_new = is_new && k == 0;
                                self.store(
                                    index,
                                    Stored::Done {
                                        email: email.clone(),
                                        vid,
                                        is_new,
                                    },
                                );
                            }
                        }
                        InputOutcome::Failed(error) => {
                            let error = errors::to_py(error).into_value(py).into_any();
                            for index in indexes {
                                let stored = Stored::Failed {
                                    email: Some(email.clone()),
                                    error: error.clone_ref(py),
                                };
                                self.store(index, stored);
                            }
                        }
                    }
                }
                None
            }
            Err(error) => {
                let interrupted = matches!(error, Error::Interrupted);
                let err = if interrupted {
                    errors::to_py(Error::Transport {
                        message: "interrupted before HubSpot answered; the batch may or may not have been applied".into(),
                        timeout: false,
                        attempts: 0,
                    })
                } else {
                    errors::to_py(error)
                };
                let value = err.value(py).clone().into_any().unbind();
                for (email, indexes) in members {
                    for index in indexes {
                        self.store(
                            index,
                            Stored::Failed {
                                email: Some(email.clone()),
                                error: value.clone_ref(py),
                            },
                        );
                    }
                }
                (!interrupted).then_some(err)
            }
        };
        self.report_progress()?;
        Ok(systemic)
    }
}

/// Reads one record: its email (under `email_field`) and its other fields as properties.
pub fn read_record(
    record: &Bound<'_, PyAny>,
    email_field: &str,
    options: ConvertOptions,
) -> PyResult<BatchInput> {
    let py = record.py();
    if !record.is_instance_of::<PyDict>() && !record.hasattr(intern!(py, "keys"))? {
        return Err(PyTypeError::new_err(format!(
            "a record must be a mapping of field names to values, got {}",
            record.get_type().name()?
        )));
    }
    let field = match record.get_item(email_field) {
        Ok(value) => Some(value),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => None,
        Err(e) => return Err(e),
    };
    let email = match field {
        None => {
            return Err(PyValueError::new_err(format!(
                "the record has no '{email_field}' field"
            )))
        }
        Some(value) => match convert::read(&value, email_field, options, false)? {
            crate::value::Value::Text(text) if !text.is_empty() => text,
            crate::value::Value::Text(_) | crate::value::Value::Missing => {
                return Err(PyValueError::new_err(format!(
                    "the record's '{email_field}' is empty"
                )))
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "the record's '{email_field}' must be a str, got {}",
                    value.get_type().name()?
                )))
            }
        },
    };
    crate::email::validate(&email).map_err(errors::to_py)?;
    let properties = convert::properties_except(Some(record), Some(email_field), options)?;
    Ok(BatchInput { email, properties })
}

/// Runs a whole bulk upsert; see the module comment.
#[allow(clippy::too_many_arguments)]
pub fn upsert_many<'py>(
    py: Python<'py>,
    core: &CoreClient,
    options: ConvertOptions,
    records: &Bound<'py, PyAny>,
    email_field: &str,
    progress: Option<&Bound<'py, PyAny>>,
    keep_all: bool,
    workers: usize,
) -> PyResult<Bound<'py, BulkResult>> {
    let mut iterator = records.try_iter()?;
    let hooks = PyHooks::new(py)?;
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Finished>();
    // Receivers are not Sync; the waits below happen with the GIL released, in a closure.
    let done_rx = Mutex::new(done_rx);
    let mut run = Run {
        keep_all,
        created: 0,
        updated: 0,
        failed: 0,
        total: 0,
        outcomes: Vec::new(),
        in_flight: HashMap::new(),
        in_flight_emails: HashMap::new(),
        progress,
        done: 0,
    };
    let mut ended: Option<Stop> = None;

    let worker_hooks = WorkerHooks {
        stop: &stop,
        caller: &hooks,
    };
    std::thread::scope(|scope| -> PyResult<()> {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (job_rx, worker_hooks) = (&job_rx, &worker_hooks);
            handles.push(scope.spawn(move || loop {
                let job = match job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                    Ok(job) => job,
                    Err(_) => return,
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    core.upsert_batch(&job.inputs, worker_hooks)
                }))
                .unwrap_or_else(|_| {
                    Err(Error::Transport {
                        message:
                            "internal error in hubspot_upsert (batch worker); please report it"
                                .into(),
                        timeout: false,
                        attempts: 0,
                    })
                });
                if done_tx.send(Finished { id: job.id, result }).is_err() {
                    return;
                }
            }));
        }
        drop(done_tx);

        let mut forming = Forming::default();
        let mut next_id = 0usize;
        let mut exhausted = false;
        let outcome = (|| -> PyResult<()> {
            loop {
                // Fill the batch from the input.
                while !exhausted && forming.inputs.len() < V3_BATCH_MAX && ended.is_none() {
                    let Some(record) = iterator.next() else {
                        exhausted = true;
                        break;
                    };
                    let record = match record {
                        Ok(record) => record,
                        Err(e) => {
                            // The input failed (or a signal handler raised while Python code
                            // read it): stop as for an interrupt, keeping what was done.
                            stop.store(true, Ordering::Relaxed);
                            ended = Some(Stop::Signal(e));
                            break;
                        }
                    };
                    let index = run.total;
                    run.total += 1;
                    match read_record(&record, email_field, options) {
                        Err(e) => {
                            let email = record.get_item(email_field).ok().and_then(|v| {
                                v.cast::<PyString>()
                                    .ok()
                                    .and_then(|s| s.to_str().ok().map(str::to_owned))
                            });
                            run.store(
                                index,
                                Stored::Failed {
                                    email,
                                    error: e.into_value(py).into_any(),
                                },
                            );
                        }
                        Ok(input) => {
                            let key = input.email.to_lowercase();
                            if let Some(&job) = run.in_flight_emails.get(&key) {
                                forming.waits_for.insert(job);
                            }
                            match forming.by_email.get(&key) {
                                Some(&at) => {
                                    let merged = &mut forming.inputs[at].properties;
                                    for (name, value) in input.properties {
                                        match merged.iter_mut().find(|(n, _)| *n == name) {
                                            Some(slot) => slot.1 = value,
                                            None => merged.push((name, value)),
                                        }
                                    }
                                    forming.members[at].push(index);
                                }
                                None => {
                                    forming.by_email.insert(key, forming.inputs.len());
                                    forming.inputs.push(input);
                                    forming.members.push(vec![index]);
                                }
                            }
                        }
                    }
                }
                let batch_ready = !forming.inputs.is_empty()
                    && (forming.inputs.len() >= V3_BATCH_MAX || exhausted);
                let can_send = batch_ready
                    && ended.is_none()
                    && run.in_flight.len() < workers
                    && forming
                        .waits_for
                        .iter()
                        .all(|j| !run.in_flight.contains_key(j));
                if can_send {
                    let batch = std::mem::take(&mut forming);
                    let id = next_id;
                    next_id += 1;
                    let mut members = Vec::with_capacity(batch.inputs.len());
                    for (input, indexes) in batch.inputs.iter().zip(batch.members) {
                        run.in_flight_emails.insert(input.email.to_lowercase(), id);
                        members.push((input.email.clone(), indexes));
                    }
                    run.in_flight.insert(id, members);
                    let job = Job {
                        id,
                        inputs: batch.inputs,
                    };
                    py.detach(|| job_tx.send(job))
                        .map_err(|_| errors::internal(py, "batch workers stopped"))?;
                    continue;
                }
                if run.in_flight.is_empty() {
                    if forming.inputs.is_empty() && (exhausted || ended.is_some()) {
                        run.report_progress()?;
                        return Ok(());
                    }
                    if !batch_ready && !exhausted && ended.is_none() {
                        continue;
                    }
                    if ended.is_some() {
                        // Records read but never sent: the run stopped before them.
                        let batch = std::mem::take(&mut forming);
                        let message = "not sent: the run stopped before this record";
                        let err = errors::to_py(Error::Transport {
                            message: message.into(),
                            timeout: false,
                            attempts: 0,
                        });
                        let value = err.value(py).clone().into_any().unbind();
                        for (input, indexes) in batch.inputs.iter().zip(batch.members) {
                            for index in indexes {
                                run.store(
                                    index,
                                    Stored::Failed {
                                        email: Some(input.email.clone()),
                                        error: value.clone_ref(py),
                                    },
                                );
                            }
                        }
                        continue;
                    }
                }
                // Wait for a batch to finish, letting signal handlers run.
                let waited = py.detach(|| loop {
                    match done_rx
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .recv_timeout(Duration::from_millis(50))
                    {
                        Ok(finished) => return Ok(Some(finished)),
                        Err(RecvTimeoutError::Disconnected) => return Ok(None),
                        Err(RecvTimeoutError::Timeout) => {
                            if stop.load(Ordering::Relaxed) {
                                continue;
                            }
                            Python::attach(|py| py.check_signals())?;
                        }
                    }
                });
                match waited {
                    Ok(Some(finished)) => {
                        if let Some(err) = run.finish(py, finished)? {
                            if ended.is_none() {
                                stop.store(true, Ordering::Relaxed);
                                ended = Some(Stop::Failure(err));
                            }
                        }
                    }
                    Ok(None) => return Err(errors::internal(py, "batch workers stopped")),
                    Err(signal) => {
                        stop.store(true, Ordering::Relaxed);
                        ended = Some(Stop::Signal(signal));
                    }
                }
            }
        })();
        drop(job_tx);
        stop.store(true, Ordering::Relaxed);
        py.detach(|| {
            for handle in handles {
                let _ = handle.join();
            }
        });
        // Outcomes of batches that finished while stopping.
        while let Ok(finished) = done_rx.lock().unwrap_or_else(|p| p.into_inner()).try_recv() {
            run.finish(py, finished)?;
        }
        outcome
    })?;

    run.outcomes.sort_unstable_by_key(|(index, _)| *index);
    let result = Bound::new(
        py,
        BulkResult {
            created: run.created,
            updated: run.updated,
            failed: run.failed,
            total: run.total,
            outcomes: run.outcomes,
            keep: if keep_all { "all" } else { "failures" },
        },
    )?;
    match ended {
        None => Ok(result),
        Some(Stop::Signal(err)) | Some(Stop::Failure(err)) => {
            let value = err.value(py);
            let _ = value.setattr("bulk_result", &result);
            Err(err)
        }
    }
}

/// Converts records to v3 batch request bodies without sending anything: what
/// `create_or_update_many` would send, for dry runs and for measuring conversion.
/// Returns `(records converted, records refused, bytes of request bodies)`.
pub fn convert_only(
    records: &Bound<'_, PyAny>,
    email_field: &str,
    options: ConvertOptions,
) -> PyResult<(usize, usize, usize)> {
    let (mut ok, mut refused, mut bytes) = (0, 0, 0);
    let mut batch: Vec<BatchInput> = Vec::with_capacity(V3_BATCH_MAX);
    let flush = |batch: &mut Vec<BatchInput>, bytes: &mut usize| {
        let refs: Vec<&BatchInput> = batch.iter().collect();
        *bytes += crate::api::v3_batch_upsert_body(&refs).len();
        batch.clear();
    };
    for record in records.try_iter()? {
        match read_record(&record?, email_field, options) {
            Ok(input) => {
                ok += 1;
                batch.push(input);
                if batch.len() == V3_BATCH_MAX {
                    flush(&mut batch, &mut bytes);
                }
            }
            Err(_) => refused += 1,
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut bytes);
    }
    Ok((ok, refused, bytes))
}
