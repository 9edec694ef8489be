//! Batch reads (100 ids a request): which contacts exist, and what they hold.
//!
//! - A run that updates only, creates only or fills empty fields reads every record's contact
//!   before writing it: contacts found are updated by HubSpot's own id, or skipped (create
//!   only), their non-empty fields left out (fill empty); the others are upserted, or skipped
//!   (update only).
//! - Records lacking a property that an admin's rule requires on new contacts are read too:
//!   those whose contact exists go on (the rule does not concern an update), the others fail
//!   with HubSpot's own refusal, unsent.
//!
//! What a read found is kept for the run, so each id is read at most once (unless a later
//! record fills a property the read did not ask for).

use std::sync::Arc;

use super::causes::Target;
use super::{Batch, BatchId, Call, Entry, Fill, Mode, Planner, Reply};
use crate::api::{self, V3_BATCH_MAX};
use crate::error::Error;

/// A batch read in flight: the keys it reads, and the properties it asked for.
#[derive(Debug)]
pub(super) struct Read {
    keys: Vec<String>,
    asked: Vec<String>,
}

impl Planner {
    /// Puts an entry to wait for a read of its key (one read per key, whatever the number of
    /// records waiting for it), or decides it at once when its key was read already.
    pub(super) fn park(&mut self, entry: Entry) {
        if self.known.contains_key(&entry.key) && !self.parked.contains_key(&entry.key) {
            self.resolve(entry);
            return;
        }
        self.hold(&entry);
        match self.parked.get_mut(&entry.key) {
            Some(waiting) => waiting.push(entry),
            None => {
                self.to_read.push_back(entry.key.clone());
                self.parked.insert(entry.key.clone(), vec![entry]);
            }
        }
    }

    /// How many keys wait for a read.
    pub(super) fn parked_len(&self) -> usize {
        self.parked.len()
    }

    /// A batch read of the keys waiting for one, when there are enough to fill it, or the
    /// input has ended (`flush`), nothing is in flight and no full write can be formed.
    pub(super) fn next_read(&mut self, flush: bool) -> Option<(BatchId, Call)> {
        let last = flush && self.groups.is_empty() && self.in_flight.is_empty();
        let last = last && self.queue.len() < V3_BATCH_MAX;
        let ready = self.to_read.len() >= V3_BATCH_MAX || (!self.to_read.is_empty() && last);
        if !ready {
            return None;
        }
        let n = self.to_read.len().min(V3_BATCH_MAX);
        let keys: Vec<String> = self.to_read.drain(..n).collect();
        let asked: Vec<String> = match &self.matching.fill {
            Fill::Nothing => Vec::new(),
            Fill::Only(names) => names.clone(),
            Fill::All => {
                let mut names: Vec<String> = Vec::new();
                for entry in keys.iter().flat_map(|k| &self.parked[k]) {
                    for (name, _) in &entry.input.properties {
                        if !names.contains(name) {
                            names.push(name.clone());
                        }
                    }
                }
                names
            }
        };
        let ids = keys.iter().map(|k| self.parked[k][0].input.id.as_str());
        let body = api::v3_batch_read_body(&self.matching.id_property, ids, &asked);
        let id = self.next_batch;
        self.next_batch += 1;
        // The keys stay held: later records with them wait for the answer.
        self.in_flight.insert(
            id,
            Batch {
                entries: Vec::new(),
                split_for: None,
                read: Some(Read { keys, asked }),
            },
        );
        Some((id, Call::Read(body)))
    }

    /// Whether reads are still to come: what they find goes with the next writes, so a short
    /// batch waits for them.
    pub(super) fn reading(&self) -> bool {
        !self.to_read.is_empty() || self.in_flight.values().any(|b| b.read.is_some())
    }

    /// The answer to a batch read: each waiting record is decided by what it found. A read
    /// that fails fails the run when every record is read first (no record of it could be
    /// written as asked); else (only records lacking what new contacts must have were read)
    /// it fails those with the rule's refusal, saying that whether they exist could not be
    /// read, and a failure of the whole run is returned, as for writes.
    pub(super) fn read_answered(
        &mut self,
        read: Read,
        answer: Result<Reply, Error>,
    ) -> Option<Error> {
        let parsed = match answer {
            Ok(reply) => {
                api::parse_v3_read(&reply.body, &self.matching.id_property).ok_or(Error::NotSent {
                    why: "HubSpot's answer to a batch read was not understood".into(),
                })
            }
            Err(error) => Err(error),
        };
        let mut waiting = Vec::new();
        for key in &read.keys {
            for entry in self.parked.remove(key).unwrap_or_default() {
                self.release(&entry);
                waiting.push(entry);
            }
        }
        let found = match parsed {
            Ok(found) => found,
            Err(error) => return self.unread(waiting, error),
        };
        let mut by_key = std::collections::HashMap::new();
        for mut contact in found {
            for name in &read.asked {
                contact.values.entry(name.clone()).or_default();
            }
            let contact = Arc::new(contact);
            for id in &contact.ids {
                by_key.insert(self.matching.key(id), contact.clone());
            }
        }
        for key in read.keys {
            let contact = by_key.get(&key).cloned();
            self.known.insert(key, contact);
        }
        for entry in waiting {
            self.resolve(entry);
        }
        None
    }

    /// Records whose read failed with `error`.
    fn unread(&mut self, waiting: Vec<Entry>, error: Error) -> Option<Error> {
        if self.matching.reads_first() {
            for entry in waiting {
                self.fail(entry, || error.clone());
            }
            return Some(error);
        }
        // A refusal or an answer not understood concerns these records; anything else, the run.
        let (why, run_failure) = match error {
            Error::Api(e) if matches!(e.status, 400 | 403 | 404 | 409) => {
                ("HubSpot refused the read", None)
            }
            Error::NotSent { .. } => ("its answer was not understood", None),
            other => ("the read failed", Some(other)),
        };
        for entry in waiting {
            let cause = self
                .causes
                .iter()
                .find(|c| matches!(c.target, Target::Lacks(_)) && c.target.matches(&entry))
                .cloned();
            match cause {
                Some(cause) => self.fail(entry, || {
                    let mut error = cause.error(false);
                    if let Error::Refused { message, .. } = &mut error {
                        message.push_str(&format!(
                            "; whether the contact exists could not be read ({why})"
                        ));
                    }
                    error
                }),
                // No such cause any more (cannot happen): send it as it is.
                None => self.enqueue(entry, true),
            }
        }
        run_failure
    }

    /// Decides an entry by what the read of its key found: skipped as the mode says, its
    /// filled fields left out, updated by HubSpot's id, or upserted.
    fn resolve(&mut self, mut entry: Entry) {
        let contact = self.known.get(&entry.key).cloned().flatten();
        entry.checked = true;
        match contact {
            Some(contact) => {
                if self.matching.mode == Mode::Create {
                    let why =
                        "its contact exists already, and the run creates only (mode='create')";
                    return self.skip(entry, "EXISTS", why);
                }
                if self.matching.fill != Fill::Nothing {
                    let fill = &self.matching.fill;
                    let unread = entry
                        .input
                        .properties
                        .iter()
                        .any(|(n, _)| fill.covers(n) && !contact.values.contains_key(n));
                    if unread {
                        // A later record fills a property the read did not ask for.
                        self.known.remove(&entry.key);
                        return self.park(entry);
                    }
                    let before = entry.input.properties.len();
                    entry.input.properties.retain(|(n, _)| {
                        !fill.covers(n) || contact.values.get(n).is_none_or(|v| v.is_empty())
                    });
                    if entry.input.properties.is_empty() && before > 0 {
                        let why = "every field it sets has a value at HubSpot already, and the \
                                   run only fills empty fields (fill_empty)";
                        return self.skip(entry, "NOTHING_TO_FILL", why);
                    }
                }
                entry.exists = true;
                entry.object_id = Some(contact.object_id);
            }
            None if self.matching.mode == Mode::Update => {
                let why = "no contact has this id, and the run updates only (mode='update')";
                return self.skip(entry, "NOT_FOUND", why);
            }
            None => entry.exists = false,
        }
        if self.matching.dry_run {
            let is_new = !entry.exists;
            for index in entry.members {
                self.outcomes.push(super::Outcome {
                    index,
                    email: self.email_of(&entry.input),
                    id: entry.input.id.clone(),
                    fate: super::Fate::Planned { is_new },
                });
            }
            return;
        }
        if let Some(entry) = self.screened(entry, false) {
            self.enqueue(entry, false);
        }
    }
}
