//! `create_or_update_many` as Python sees it: records are read from a Python iterator and
//! converted here; the core (`crate::bulk`, `crate::planner`) does everything else, with the
//! GIL released, and its outcomes come back here to become `UpsertResult`s and `RecordError`s
//! in a [`BulkResult`].

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyString};

use super::convert::{self, ConvertOptions};
use super::errors;
use super::hooks::PyHooks;
use super::results::{BulkResult, Keep, Stored};
use super::state::PyLedger;
use crate::api::BatchInput;
use crate::bulk::{Chunk, Sink, Source};
use crate::client::{Association, Client, Linked};
use crate::context::Log;
use crate::error::{Error, Raised, Result as CoreResult, Stop};
use crate::planner::{Fate, Matching, Outcome};
use crate::state::Ledger;

/// What a run has done so far, shared by the reading and the collecting side.
struct Store {
    keep: Keep,
    created: usize,
    updated: usize,
    failed: usize,
    skipped: usize,
    unchanged: usize,
    total: usize,
    done: usize,
    outcomes: Vec<(usize, Stored)>,
    /// The input or the progress callback raised: the run is stopping (its exception travels
    /// in the core's error).
    stopped: bool,
    /// With associations: each record read that names a record to associate it with, by its
    /// index (its key in a sync state, and one key per association, None where it names none).
    links: HashMap<usize, (String, Vec<Option<String>>)>,
    /// Records that landed and name records to associate them with, and their addresses.
    linked: Vec<(Linked, Option<String>)>,
    /// Associations made.
    associated: usize,
    /// Records that landed and were not associated, with why.
    unassociated: Vec<(usize, Option<String>, Error)>,
    /// A mirror run: the keys of records read that failed before the core saw them, and how
    /// many had no readable id, not yet told to the state.
    failed_keys: Vec<String>,
    unreadable: usize,
}

impl Store {
    fn put(&mut self, index: usize, stored: Stored) {
        match &stored {
            Stored::Done { is_new: true, .. } | Stored::Planned { is_new: true } => {
                self.created += 1
            }
            Stored::Done { .. } | Stored::Planned { .. } => self.updated += 1,
            Stored::Skipped { .. } => self.skipped += 1,
            Stored::Unchanged { .. } => self.unchanged += 1,
            Stored::Failed { .. } => self.failed += 1,
        }
        self.done += 1;
        // What did not land is kept with its reason whatever `keep` says: a failure, or a
        // record its sync mode left alone.
        let kept = match stored {
            Stored::Failed { .. } | Stored::Skipped { .. } => true,
            Stored::Planned { .. } => false,
            Stored::Done { .. } | Stored::Unchanged { .. } => self.keep == Keep::All,
        };
        if kept {
            self.outcomes.push((index, stored));
        }
    }
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads records from the Python iterator, attached only while it reads.
pub struct PySource<'a> {
    iterator: Py<PyIterator>,
    id_field: String,
    /// The fields naming the records to associate each record with, and whether their keys
    /// are HubSpot ids.
    link_fields: &'a [(String, bool)],
    matching: &'a Matching,
    options: ConvertOptions,
    store: &'a Mutex<Store>,
    /// A mirror run's sync state: told the key of every record read (`saw(keys, unreadable)`,
    /// a chunk at a time), those that failed included, and how many had no id to read.
    mirror: Option<Py<PyAny>>,
}

impl Source for PySource<'_> {
    fn read(&mut self, max: usize) -> Chunk {
        let mut chunk = self.read_chunk(max);
        if let Some(mirror) = &self.mirror {
            let keys: Vec<String> = chunk
                .records
                .iter()
                .map(|(_, input)| self.matching.key(&input.id))
                .collect();
            Python::attach(|py| {
                let mut store = lock(self.store);
                let mut keys = keys;
                keys.append(&mut store.failed_keys);
                let unreadable = std::mem::take(&mut store.unreadable);
                // Were it not told, the state could archive a record the source has: the
                // run stops instead.
                if let Err(e) = mirror.bind(py).call_method1("saw", (keys, unreadable)) {
                    store.stopped = true;
                    if chunk.failed.is_none() {
                        chunk.done = false;
                        chunk.failed = Some(stopped_by(py, e));
                    }
                }
            });
        }
        chunk
    }
}

impl PySource<'_> {
    fn read_chunk(&mut self, max: usize) -> Chunk {
        Python::attach(|py| {
            let mut iterator = self.iterator.bind(py).clone();
            let mut store = lock(self.store);
            let mut records = Vec::with_capacity(max);
            for _ in 0..max {
                let record = match iterator.next() {
                    None => {
                        return Chunk {
                            records,
                            done: true,
                            failed: None,
                        }
                    }
                    Some(Ok(record)) => record,
                    Some(Err(e)) => {
                        // The input failed, or a signal handler raised while it was read.
                        store.stopped = true;
                        let failed = stopped_by(py, e);
                        return Chunk {
                            records,
                            done: false,
                            failed: Some(failed),
                        };
                    }
                };
                let index = store.total;
                let read = read_record(&record, &self.id_field, self.matching, self.options)
                    .and_then(|input| with_links(&record, input, self.link_fields, self.options));
                match read {
                    Ok(input) => {
                        if !input.links.is_empty() {
                            let keys = input
                                .links
                                .iter()
                                .map(|k| Some(k.clone()).filter(|k| !k.is_empty()))
                                .collect();
                            let key = self.matching.key(&input.id);
                            store.links.insert(index, (key, keys));
                        }
                        records.push((index, input))
                    }
                    // A signal handler's exception while the record was read: the run stops
                    // before this record, which counts as never read.
                    Err(e) if !e.is_instance_of::<PyException>(py) => {
                        store.stopped = true;
                        return Chunk {
                            records,
                            done: false,
                            failed: Some(stopped_by(py, e)),
                        };
                    }
                    Err(e) => {
                        let email = record
                            .get_item(match self.matching.by_email() {
                                true => &self.id_field,
                                false => "email",
                            })
                            .ok()
                            .and_then(|v| {
                                v.cast::<PyString>()
                                    .ok()
                                    .and_then(|s| s.to_str().ok().map(str::to_owned))
                            });
                        let error = convert::as_bad_value(py, e, "the record");
                        let error = error.into_value(py).into_any();
                        store.put(index, Stored::Failed { email, error });
                        if self.mirror.is_some() {
                            let id = record.get_item(&self.id_field).ok().and_then(|v| {
                                read_id(&v, Some(&self.id_field), self.matching, self.options).ok()
                            });
                            match id {
                                Some(id) => store.failed_keys.push(self.matching.key(&id)),
                                None => store.unreadable += 1,
                            }
                        }
                    }
                }
                store.total += 1;
            }
            Chunk {
                records,
                done: false,
                failed: None,
            }
        })
    }
}

/// How the caller's own exception stops a run, carried in the error: an `Exception` (the
/// input failed, a progress callback or the sync state's store raised) waits for the answers
/// in flight; anything else (`KeyboardInterrupt`, a signal handler's own exception) stops it
/// at once.
pub(super) fn stopped_by(py: Python<'_>, e: PyErr) -> Error {
    let stop = match e.is_instance_of::<PyException>(py) {
        true => Stop::Code,
        false => Stop::Signal,
    };
    Error::caller(stop, Raised::new(e))
}

/// Turns the core's outcomes into Python objects, and reports progress.
pub struct PySink<'a> {
    store: &'a Mutex<Store>,
    progress: Option<Py<PyAny>>,
}

impl PySink<'_> {
    fn report(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(cb) = &self.progress {
            let done = lock(self.store).done;
            cb.bind(py).call1((done,))?;
        }
        Ok(())
    }
}

impl Sink for PySink<'_> {
    fn take(&mut self, outcomes: Vec<Outcome>) -> CoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        Python::attach(|py| {
            {
                let mut store = lock(self.store);
                for o in outcomes {
                    let links = store.links.remove(&o.index);
                    if let (Fate::Landed(landed), Some((state_key, keys))) = (&o.fate, links) {
                        let linked = Linked {
                            index: o.index,
                            from: landed.vid,
                            state_key,
                            keys,
                        };
                        store.linked.push((linked, o.email.clone()));
                    }
                    let stored = match o.fate {
                        Fate::Landed(landed) => Stored::Done {
                            id: o.id,
                            email: o.email,
                            vid: landed.vid,
                            is_new: landed.is_new,
                        },
                        Fate::Planned { is_new } => Stored::Planned { is_new },
                        Fate::Unchanged { object_id } => Stored::Unchanged {
                            id: o.id,
                            email: o.email,
                            vid: object_id,
                        },
                        Fate::Skipped(skip) => Stored::Skipped {
                            id: o.id,
                            code: skip.code,
                            reason: skip.reason,
                        },
                        Fate::Failed(error) => Stored::Failed {
                            email: o.email,
                            error: errors::to_py(error).into_value(py).into_any(),
                        },
                    };
                    store.put(o.index, stored);
                }
            }
            let store = lock(self.store);
            if store.stopped {
                // The callback raised already: what comes now is kept, not reported.
                return Ok(());
            }
            drop(store);
            self.report(py).map_err(|e| {
                lock(self.store).stopped = true;
                stopped_by(py, e)
            })
        })
    }
}

/// Reads the fields of `record` that name the records to associate it with (`fields`: each
/// field, and whether it holds HubSpot ids) into `input.links`, and leaves them out of its
/// properties. A record that names none has no links.
fn with_links(
    record: &Bound<'_, PyAny>,
    mut input: BatchInput,
    fields: &[(String, bool)],
    options: ConvertOptions,
) -> PyResult<BatchInput> {
    if fields.is_empty() {
        return Ok(input);
    }
    let py = record.py();
    let mut keys = Vec::with_capacity(fields.len());
    for (field, by_object_id) in fields {
        let value = match record.get_item(field) {
            Ok(value) => value,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => {
                keys.push(String::new());
                continue;
            }
            Err(e) => return Err(e),
        };
        let key = match convert::read(&value, field, options, false)? {
            crate::value::Value::Text(text) => text.trim().to_owned(),
            crate::value::Value::Integer(digits) => digits,
            crate::value::Value::Missing => String::new(),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "the record's '{field}' (the key of a record to associate it with) must be \
                     a str or an int, got {}",
                    value.get_type().name()?
                )))
            }
        };
        if *by_object_id
            && !key.is_empty()
            && !(key.bytes().all(|b| b.is_ascii_digit()) && key.parse::<i64>().is_ok_and(|n| n > 0))
        {
            return Err(PyValueError::new_err(format!(
                "the record's '{field}' is '{key}', not a HubSpot record id (hs_object_id is a \
                 positive whole number)"
            )));
        }
        keys.push(key);
    }
    let named: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    input
        .properties
        .retain(|(name, _)| !named.contains(&name.as_str()));
    if keys.iter().any(|k| !k.is_empty()) {
        input.links = keys;
    }
    Ok(input)
}

/// Reads one record: its id (an email, unless `matching` says otherwise, under `id_field`)
/// and its other fields as properties.
pub fn read_record(
    record: &Bound<'_, PyAny>,
    id_field: &str,
    matching: &Matching,
    options: ConvertOptions,
) -> PyResult<BatchInput> {
    let py = record.py();
    if !record.is_instance_of::<PyDict>() && !record.hasattr(intern!(py, "keys"))? {
        return Err(PyTypeError::new_err(format!(
            "a record must be a mapping of field names to values, got {}",
            record.get_type().name()?
        )));
    }
    let mut key = id_field.to_owned();
    let mut field = match record.get_item(id_field) {
        Ok(value) => Some(value),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => None,
        Err(e) => return Err(e),
    };
    if field.is_none() && matching.labels {
        // An export names the id by its label: "Email" for email.
        for name in record.call_method0(intern!(py, "keys"))?.try_iter()? {
            let name = name?;
            let Ok(text) = name.cast::<PyString>() else {
                continue;
            };
            if text.to_str()?.trim().eq_ignore_ascii_case(id_field) {
                key = text.to_str()?.to_owned();
                field = Some(record.get_item(name)?);
                break;
            }
        }
    }
    let Some(value) = field else {
        return Err(PyValueError::new_err(format!(
            "the record has no '{id_field}' field"
        )));
    };
    let id = read_id(&value, Some(&key), matching, options)?;
    let properties = convert::properties_except(Some(record), &[&key], options)?;
    Ok(BatchInput {
        id,
        properties,
        links: Vec::new(),
    })
}

/// A record's id, from its field `field` (None: the id argument of a single upsert): an
/// address, or for any other id property a str or a whole number; trimmed and checked by
/// `matching`.
pub fn read_id(
    value: &Bound<'_, PyAny>,
    field: Option<&str>,
    matching: &Matching,
    options: ConvertOptions,
) -> PyResult<String> {
    // Named in errors only: nothing is formatted for a good id.
    let what = || match (field, matching.by_email()) {
        (Some(field), _) => format!("the record's '{field}'"),
        (None, true) => "email".to_owned(),
        (None, false) => "id".to_owned(),
    };
    let id = match convert::read(value, field.unwrap_or("id"), options, false)? {
        // White space around an id is an artefact of the file, not part of it; an address
        // is checked below, where an empty one is said to be empty.
        crate::value::Value::Text(text) if matching.by_email() || !text.trim().is_empty() => text,
        // A whole number is a fine id for any property but email (a database key, say).
        crate::value::Value::Integer(digits) if !matching.by_email() => digits,
        crate::value::Value::Text(_) | crate::value::Value::Missing => {
            return Err(PyValueError::new_err(format!("{} is empty", what())))
        }
        _ => {
            let wanted = match matching.by_email() {
                true => "a str",
                false => "a str or an int",
            };
            return Err(PyTypeError::new_err(format!(
                "{} must be {wanted}, got {}",
                what(),
                value.get_type().name()?
            )));
        }
    };
    if matching.by_email() {
        let id = id.trim().to_owned();
        crate::email::validate(&id).map_err(errors::to_py)?;
        return Ok(id);
    }
    matching
        .check_id(&id)
        .map_err(|why| PyValueError::new_err(format!("{}: {why}", what())))
}

/// `field` when it names a field.
pub fn field_name<'a>(field: &'a str, what: &str) -> PyResult<&'a str> {
    if field.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{what} must name the field holding each record's id, got ''"
        )));
    }
    Ok(field)
}

/// One bulk run's Python side: where records come from, where progress goes, what to keep.
/// Made by [`super::run_options::BulkOptions::run`].
pub struct Run<'a, 'py> {
    records: &'a Bound<'py, PyAny>,
    id_field: String,
    matching: Matching,
    options: ConvertOptions,
    progress: Option<&'a Bound<'py, PyAny>>,
    keep: Keep,
    /// The sync state's store for this run, if it keeps one.
    state: Option<&'a Bound<'py, PyAny>>,
    /// Associations to make once the records have landed: each, the field naming the
    /// associated record's key, and the client that makes them (none: a check, which only
    /// reads the keys).
    associations: Vec<(Association, String)>,
    client: Option<Arc<Client>>,
}

impl<'a, 'py> Run<'a, 'py> {
    /// A run reading each record's id from `id_field` (checked by its maker) and associating
    /// it as `associations` say.
    pub fn new(
        records: &'a Bound<'py, PyAny>,
        id_field: String,
        matching: Matching,
        options: ConvertOptions,
        keep: Keep,
        associations: Vec<(Association, String)>,
    ) -> Self {
        Run {
            records,
            id_field,
            matching,
            options,
            progress: None,
            keep,
            state: None,
            associations,
            client: None,
        }
    }

    /// Makes the associations through `client` (without one, their keys are only read).
    pub fn through(mut self, client: Option<&Arc<Client>>) -> Self {
        self.client = client.cloned();
        self
    }

    /// Tells `progress` how many records are done.
    pub fn with_progress(mut self, progress: Option<&'a Bound<'py, PyAny>>) -> Self {
        self.progress = progress;
        self
    }

    /// Keeps a sync state in `state` (see `hubspot_upsert._state`).
    pub fn with_state(mut self, state: Option<&'a Bound<'py, PyAny>>) -> Self {
        self.state = state;
        self
    }

    /// Reads the records into `work` (run with the GIL released) and collects what it reports
    /// into a [`BulkResult`]; a run that ends early raises, with that result as `bulk_result`.
    pub fn collect(
        self,
        py: Python<'py>,
        work: impl FnOnce(
                &mut PySource,
                &mut PySink,
                &PyHooks,
                Arc<dyn Log>,
                Matching,
                &mut dyn Ledger,
            ) -> CoreResult<()>
            + Send,
    ) -> PyResult<Bound<'py, BulkResult>> {
        let iterator = self.records.try_iter()?.unbind();
        let hooks = Arc::new(PyHooks::new(py)?);
        let store = Mutex::new(Store {
            keep: self.keep,
            created: 0,
            updated: 0,
            failed: 0,
            skipped: 0,
            unchanged: 0,
            total: 0,
            done: 0,
            outcomes: Vec::new(),
            stopped: false,
            links: HashMap::new(),
            linked: Vec::new(),
            associated: 0,
            unassociated: Vec::new(),
            failed_keys: Vec::new(),
            unreadable: 0,
        });
        let mirror = match self.state {
            Some(state) if !state.is_none() && state.getattr("mirror")?.is_truthy()? => {
                Some(state.clone().unbind())
            }
            _ => None,
        };
        let mut ledger = PyLedger::new(self.state);
        let id_property = self.matching.id_property.clone();
        let link_fields: Vec<(String, bool)> = self
            .associations
            .iter()
            .map(|(a, field)| (field.clone(), a.by == crate::api::OBJECT_ID))
            .collect();
        let mut source = PySource {
            iterator,
            id_field: self.id_field.to_owned(),
            link_fields: &link_fields,
            matching: &self.matching,
            options: self.options,
            store: &store,
            mirror,
        };
        let mut sink = PySink {
            store: &store,
            progress: self.progress.map(|p| p.clone().unbind()),
        };
        let log: Arc<dyn Log> = hooks.clone();
        let object = self.matching.object.clone();
        let ran = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| {
                if let Some(client) = &self.client {
                    for (association, _) in &self.associations {
                        client.check_association(&object, association, &*hooks)?;
                    }
                }
                work(
                    &mut source,
                    &mut sink,
                    &hooks,
                    log.clone(),
                    self.matching.clone(),
                    &mut ledger,
                )?;
                match &self.client {
                    Some(client) => associate(
                        client,
                        &object,
                        &self.associations,
                        &store,
                        &mut ledger,
                        &hooks,
                        log,
                    ),
                    None => Ok(()),
                }
            }))
        });
        let ended = match ran {
            Ok(Ok(())) => sink.report(py).err(),
            Ok(Err(error)) => Some(errors::to_py(error)),
            Err(_) => Some(errors::internal(py, "bulk upsert")),
        };
        finish(py, store, ended, id_property)
    }
}

/// Makes the associations of the records that landed (after the whole run: every record's
/// object id is known then); a record whose association failed is forgotten by the sync state,
/// so that the next run sends it again.
fn associate(
    client: &Arc<Client>,
    object: &crate::api::ObjectType,
    associations: &[(Association, String)],
    store: &Mutex<Store>,
    ledger: &mut dyn Ledger,
    hooks: &PyHooks,
    log: Arc<dyn Log>,
) -> CoreResult<()> {
    let (records, emails): (Vec<Linked>, Vec<Option<String>>) =
        std::mem::take(&mut lock(store).linked).into_iter().unzip();
    let associations: Vec<Association> = associations.iter().map(|(a, _)| a.clone()).collect();
    let done = client.associate_run(object, &associations, &records, ledger, hooks, log)?;
    let mut store = lock(store);
    store.associated += done.associated;
    for (index, error) in done.unassociated {
        let email = records
            .iter()
            .position(|l| l.index == index)
            .and_then(|at| emails[at].clone());
        store.unassociated.push((index, email, error));
    }
    Ok(())
}

/// The result of a run from what it stored; raised with it as `bulk_result` if it `ended`.
fn finish(
    py: Python<'_>,
    store: Mutex<Store>,
    ended: Option<PyErr>,
    id_property: String,
) -> PyResult<Bound<'_, BulkResult>> {
    let mut store = store.into_inner().unwrap_or_else(|p| p.into_inner());
    store.outcomes.sort_unstable_by_key(|(index, _)| *index);
    store
        .unassociated
        .sort_unstable_by_key(|(index, _, _)| *index);
    let unassociated = store
        .unassociated
        .into_iter()
        .map(|(index, email, error)| {
            let error = errors::to_py(error).into_value(py).into_any();
            (index, Stored::Failed { email, error })
        })
        .collect();
    let result = Bound::new(
        py,
        BulkResult {
            created: store.created,
            updated: store.updated,
            failed: store.failed,
            skipped: store.skipped,
            unchanged: store.unchanged,
            total: store.total,
            id_property,
            outcomes: store.outcomes,
            keep: store.keep,
            associated: store.associated,
            unassociated,
            archived: std::sync::OnceLock::new(),
        },
    )?;
    match ended {
        None => Ok(result),
        Some(err) => {
            let _ = err.value(py).setattr("bulk_result", &result);
            Err(err)
        }
    }
}

/// Converts records to v3 batch request bodies without sending anything: what
/// `create_or_update_many` would send, for measuring conversion (the benchmark's build only).
/// Returns `(records converted, records refused, bytes of request bodies)`.
#[cfg(feature = "bench")]
pub fn convert_only(
    records: &Bound<'_, PyAny>,
    email_field: &str,
    options: ConvertOptions,
) -> PyResult<(usize, usize, usize)> {
    let matching = Matching::default();
    let (mut ok, mut refused, mut bytes) = (0, 0, 0);
    let mut batch: Vec<BatchInput> = Vec::with_capacity(crate::api::V3_BATCH_MAX);
    let flush = |batch: &mut Vec<BatchInput>, bytes: &mut usize| {
        let traces: Vec<String> = (0..batch.len()).map(|i| i.to_string()).collect();
        *bytes += crate::api::v3_batch_upsert_body(
            "email",
            traces.iter().map(String::as_str).zip(batch.iter()),
        )
        .len();
        batch.clear();
    };
    for record in records.try_iter()? {
        match read_record(&record?, email_field, &matching, options) {
            Ok(input) => {
                ok += 1;
                batch.push(input);
                if batch.len() == crate::api::V3_BATCH_MAX {
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
