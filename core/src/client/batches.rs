//! Bulk runs: the driver (`crate::bulk`) with this client's batch requests as tasks on its
//! runtime.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Client, Hooks, Level, Log};
use crate::api;
use crate::bulk;
use crate::error::{Error, Result};
use crate::planner::{BatchId, Call, Matching, Planner, Reply};
use crate::state::Ledger;
use crate::transport::Lease;

impl Client {
    /// Upserts every record `source` gives, with v3 batch requests; see [`crate::bulk`].
    /// `matching` says what each record's id is and what the run may do; `cap` is the most
    /// batches in flight; `ledger` is the sync state ([`crate::state`]).
    #[allow(clippy::too_many_arguments)]
    pub fn create_or_update_many(
        self: &Arc<Self>,
        source: &mut dyn bulk::Source,
        sink: &mut dyn bulk::Sink,
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
        matching: Matching,
        cap: usize,
        ledger: &mut dyn Ledger,
    ) -> Result<()> {
        self.log_paths(hooks);
        // The first records are read before anything is sent: an input that fails at once (a
        // missing column, say) or holds no record costs no request.
        let mut first = source.read(api::V3_BATCH_MAX);
        let schema = match first.failed.take() {
            Some(error) => Err(error),
            None if first.records.is_empty() && first.done => Ok(None),
            None => self
                .property_definitions(&matching.object, hooks)
                .and_then(
                    |schema| match schema.as_ref().and_then(|s| matching.refusal(s)) {
                        Some(refusal) => Err(refusal),
                        None => Ok(schema),
                    },
                ),
        };
        let schema = match schema {
            Ok(schema) => schema,
            Err(error) => {
                // Nothing was sent: the records read so far say so.
                let mut planner = Planner::new(None, matching, cap);
                for (index, input) in first.records {
                    planner.push(index, input);
                }
                planner.fail_unsent(|| Error::NotSent {
                    why: format!("the run stopped before this record ({error})"),
                });
                sink.take(planner.take_outcomes())?;
                return Err(error);
            }
        };
        let object = matching.object.clone();
        // The first batch goes alone, so that a refusal every batch would share costs one
        // request; but where answers take a quarter of the rate window or more, waiting for
        // its answer would leave that part of the window unused: with the definitions read
        // (the causes they show are known before sending), the window opens at once.
        let open = schema.is_some() && self.pacer.answers_are_slow();
        // Where writes' times are not known yet (a light read's quick answer says nothing of
        // them), the first batch is waited for a tenth of the window at most: longer, and the
        // wait shows in the run's time (every later window's room opens that much later).
        let opens_after = schema.is_some().then(|| self.pacer.window() / 10);
        let mut planner = Planner::new(schema, matching, cap);
        if open {
            planner.open_window();
        }
        let mut source = bulk::Prefetched::new(first, source);
        let source = &mut source;
        let sender = BatchSender {
            client: self.clone(),
            lease: self.transports.lease()?,
            url: api::batch_upsert_url(&self.base_url, &self.api, &object),
            read_url: api::batch_read_url(&self.base_url, &self.api, &object),
            update_url: api::batch_update_url(&self.base_url, &self.api, &object),
            log,
            tasks: Mutex::default(),
            opens_after,
        };
        let result = bulk::run(&mut planner, source, &sender, sink, ledger, hooks);
        if planner.contradicts_definitions() {
            self.forget_definitions(&object);
        }
        if !planner.left_out.is_empty() && hooks.enabled(Level::Warning) {
            let fields: Vec<&str> = planner.left_out.iter().map(String::as_str).collect();
            hooks.log(
                Level::Warning,
                &format!(
                    "left out the read-only fields of an export (HubSpot sets them): {}",
                    fields.join(", ")
                ),
            );
        }
        if planner.unmatched_results > 0 && hooks.enabled(Level::Warning) {
            hooks.log(
                Level::Warning,
                &format!(
                    "{} batch results named no record of their batch and were ignored",
                    planner.unmatched_results
                ),
            );
        }
        result
    }
}

/// The batch requests of one bulk run, as tasks on the client's runtime.
struct BatchSender {
    client: Arc<Client>,
    lease: Lease,
    url: String,
    read_url: String,
    update_url: String,
    log: Arc<dyn Log>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    opens_after: Option<std::time::Duration>,
}

impl bulk::Sender for BatchSender {
    fn try_reserve(&self) -> std::result::Result<Instant, bulk::NoRoom> {
        match self.client.pacer.try_reserve(Instant::now()) {
            Ok(slot) => Ok(slot),
            Err(pace) if pace > self.client.retry.deadline => Err(bulk::NoRoom::PastDeadline(
                Box::new(self.client.past_deadline(pace, 0)),
            )),
            Err(pace) => Err(bulk::NoRoom::For(pace)),
        }
    }

    fn patience(&self) -> std::time::Duration {
        self.client.timeout
    }

    fn opens_after(&self) -> Option<std::time::Duration> {
        self.opens_after
    }

    fn send(&self, id: BatchId, call: Call, slot: Instant, done: bulk::Done) {
        let (url, body) = match call {
            Call::Upsert(body) => (self.url.clone(), body),
            Call::Read(body) => (self.read_url.clone(), body),
            Call::Update(body) => (self.update_url.clone(), body),
        };
        let (client, http, log) = (
            self.client.clone(),
            self.lease.http.clone(),
            self.log.clone(),
        );
        let task = self.lease.handle.spawn(async move {
            let answer = client
                .request(
                    &http,
                    reqwest::Method::POST,
                    &url,
                    Some(body),
                    &*log,
                    Some(slot),
                )
                .await
                .map_err(|e| client.explain_404(&client.api, e))
                .map(|a| Reply {
                    status: a.status,
                    correlation_id: a.correlation_id,
                    body: a.body,
                });
            let _ = done.send((id, answer));
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }

    fn cancel_all(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Drop for BatchSender {
    fn drop(&mut self) {
        bulk::Sender::cancel_all(self);
    }
}
