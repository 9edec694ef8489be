//! Existence checks: records lacking a property that an admin's rule requires on new contacts
//! wait here until a batch read (100 addresses a request) says which of their contacts exist.
//! Those that exist go on as upserts (the rule does not concern an update); the others fail
//! with HubSpot's own refusal, unsent.

use super::causes::Target;
use super::{Batch, BatchId, Call, Entry, Planner, Reply};
use crate::api::{self, V3_BATCH_MAX};
use crate::error::Error;

impl Planner {
    /// A batch read of the addresses waiting for one, when there are enough to fill it, or
    /// the input has ended (`flush`), nothing is in flight and no full upsert can be formed.
    pub(super) fn next_read(&mut self, flush: bool) -> Option<(BatchId, Call)> {
        let last = flush && self.groups.is_empty() && self.in_flight.is_empty();
        let last = last && self.queue.len() < V3_BATCH_MAX;
        let ready = self.to_read.len() >= V3_BATCH_MAX || (!self.to_read.is_empty() && last);
        if !ready {
            return None;
        }
        let n = self.to_read.len().min(V3_BATCH_MAX);
        let entries: Vec<Entry> = self.to_read.drain(..n).collect();
        let body = api::v3_batch_read_body(entries.iter().map(|e| e.input.email.as_str()));
        let id = self.next_batch;
        self.next_batch += 1;
        // The entries' addresses stay held: later records with them wait for the answer.
        self.in_flight.insert(
            id,
            Batch {
                entries,
                split_for: None,
                read: true,
            },
        );
        Some((id, Call::Read(body)))
    }

    /// Whether existence checks are still to come: contacts they find go with the next
    /// upserts, so a short batch waits for them.
    pub(super) fn reading(&self) -> bool {
        !self.to_read.is_empty() || self.in_flight.values().any(|b| b.read)
    }

    /// The answer to a batch read: contacts found go on as upserts, the others fail with the
    /// rule's refusal. A read that fails (a token without the read scope, say) fails them with
    /// the refusal too, saying that whether they exist could not be read; a failure of the
    /// whole run is returned, as for upserts.
    pub(super) fn read_answered(
        &mut self,
        entries: Vec<Entry>,
        answer: Result<Reply, Error>,
    ) -> Option<Error> {
        let (found, run_failure, why) = match answer {
            Ok(reply) => match api::parse_v3_read(&reply.body) {
                Some(found) => (found, None, None),
                None => (
                    Default::default(),
                    None,
                    Some("its answer was not understood"),
                ),
            },
            Err(Error::Api(e)) if matches!(e.status, 400 | 403 | 404 | 409) => {
                (Default::default(), None, Some("HubSpot refused the read"))
            }
            Err(error) => (Default::default(), Some(error), Some("the read failed")),
        };
        for mut entry in entries {
            if entry.addresses().any(|a| found.contains(&a)) {
                entry.exists = true;
                self.enqueue(entry, true);
                continue;
            }
            let cause = self
                .causes
                .iter()
                .find(|c| matches!(c.target, Target::Lacks(_)) && c.target.matches(&entry))
                .cloned();
            match (cause, why) {
                (Some(cause), None) => self.fail(entry, || cause.error(false)),
                (Some(cause), Some(why)) => self.fail(entry, || {
                    let mut error = cause.error(false);
                    if let Error::Refused { message, .. } = &mut error {
                        message.push_str(&format!(
                            "; whether the contact exists could not be read ({why})"
                        ));
                    }
                    error
                }),
                // No such cause any more (cannot happen): send it as it is.
                (None, _) => self.enqueue(entry, true),
            }
        }
        run_failure
    }
}
