//! The sync state of a run as the core sees it ([`Ledger`]), kept by a Python object: the
//! store of `hubspot_upsert._state` (SQLite or PostgreSQL) for one run. Its methods are called
//! with the GIL held, a batch at a time; an exception it raises stops the run (nothing more is
//! sent) and is raised to the caller unchanged.

use pyo3::intern;
use pyo3::prelude::*;

use crate::error::{Error, Result};
use crate::planner::BatchId;
use crate::state::{Accepted, Fingerprint, Held, Ledger};

pub struct PyLedger {
    /// The run's store: `recall(keys)`, `sent(batch, records)`, `answered(batch, accepted)`.
    run: Option<Py<PyAny>>,
}

impl PyLedger {
    pub fn new(run: Option<&Bound<'_, PyAny>>) -> Self {
        PyLedger {
            run: run.filter(|r| !r.is_none()).map(|r| r.clone().unbind()),
        }
    }

    /// Calls the store; what it raises stops the run, carried in the error.
    fn call<T>(
        &mut self,
        work: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T>,
    ) -> Result<T> {
        let Some(run) = &self.run else {
            return Err(Error::Internal(
                "a sync state was used without a store".into(),
            ));
        };
        Python::attach(|py| work(py, run.bind(py)).map_err(|e| super::bulk::stopped_by(py, e)))
    }
}

impl Ledger for PyLedger {
    fn active(&self) -> bool {
        self.run.is_some()
    }

    fn recall(&mut self, keys: &[String]) -> Result<Vec<Option<Held>>> {
        self.call(|py, run| {
            let held: Vec<Option<(String, i64)>> = run
                .call_method1(intern!(py, "recall"), (keys.to_vec(),))?
                .extract()?;
            if held.len() != keys.len() {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "the sync state answered {} of {} ids",
                    held.len(),
                    keys.len()
                )));
            }
            Ok(held
                .into_iter()
                .map(|h| {
                    // A fingerprint the state cannot read is no match: the record is sent.
                    let (hex, object_id) = h?;
                    Some(Held {
                        fingerprint: Fingerprint::from_hex(&hex)?,
                        object_id,
                    })
                })
                .collect())
        })
    }

    fn sent(&mut self, batch: BatchId, records: usize) -> Result<()> {
        self.call(|py, run| {
            run.call_method1(intern!(py, "sent"), (batch, records))?;
            Ok(())
        })
    }

    fn answered(&mut self, batch: Option<BatchId>, accepted: &[Accepted]) -> Result<()> {
        self.call(|py, run| {
            let rows: Vec<(&str, String, i64)> = accepted
                .iter()
                .map(|a| (a.key.as_str(), a.fingerprint.hex(), a.object_id))
                .collect();
            run.call_method1(intern!(py, "answered"), (batch, rows))?;
            Ok(())
        })
    }

    fn forget(&mut self, keys: &[String]) -> Result<()> {
        self.call(|py, run| {
            run.call_method1(intern!(py, "forget"), (keys.to_vec(),))?;
            Ok(())
        })
    }

    fn relink(&mut self, to: &str, links: &[(String, Option<i64>)]) -> Result<Vec<Option<i64>>> {
        self.call(|py, run| {
            let before: Vec<Option<i64>> = run
                .call_method1(intern!(py, "relink"), (to, links.to_vec()))?
                .extract()?;
            if before.len() != links.len() {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "the sync state answered {} of {} links",
                    before.len(),
                    links.len()
                )));
            }
            Ok(before)
        })
    }
}
