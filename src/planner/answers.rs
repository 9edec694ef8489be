//! What an answer to a batch means for its records: landed, refused for a learned cause, to go
//! again, or split until the bad one stands alone.

use super::causes::{read_error, Cause, Finding};
use std::collections::HashMap;

use super::{Entry, Landed, Planner, Reply};
use crate::api;
use crate::error::{ApiError, ApiErrorKind, Error};

impl Planner {
    pub(super) fn accepted(&mut self, entries: Vec<Entry>, reply: Reply) -> Option<Error> {
        let Some(results) = api::parse_v3_batch(&reply.body) else {
            let mut e = ApiError::from_response(reply.status, reply.correlation_id, &reply.body);
            e.summary = format!(
                "HubSpot's answer to the batch upsert was not understood: {}",
                e.summary
            );
            e.summary.push_str("; the records may have been applied");
            let error = Error::from(e);
            for entry in entries {
                self.fail(entry, || error.clone());
            }
            return Some(error);
        };
        self.window = self.cap;
        let mut by_trace: HashMap<String, usize> = HashMap::new();
        let mut by_address: HashMap<String, usize> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            by_trace.insert(entry.members[0].to_string(), i);
            for address in entry.addresses() {
                by_address.insert(address, i);
            }
        }
        let mut landed: Vec<Option<Landed>> = vec![None; entries.len()];
        for r in &results {
            let at = r
                .trace_id
                .as_ref()
                .and_then(|t| by_trace.get(t))
                .or_else(|| r.email.as_ref().and_then(|e| by_address.get(e)));
            match at {
                Some(&i) => {
                    landed[i] = Some(Landed {
                        vid: r.vid,
                        is_new: r.is_new,
                    })
                }
                // A result that names no input of this batch is never guessed at.
                None => self.unmatched_results += 1,
            }
        }
        let mut missing = Vec::new();
        for (entry, landed) in entries.into_iter().zip(landed) {
            match landed {
                Some(l) => self.land(entry, l),
                None => missing.push(entry),
            }
        }
        if missing.is_empty() {
            return None;
        }
        // A 207 lists why it left inputs out: read it as the 400 it stands for.
        let mut e = ApiError::from_response(400, reply.correlation_id.clone(), &reply.body);
        e.status = reply.status;
        if !e.errors.is_empty() {
            self.rejected(missing, e);
            return None;
        }
        let correlation = reply.correlation_id.unwrap_or_else(|| "none".into());
        let status = reply.status;
        for entry in missing {
            self.fail(entry, || {
                let mut e = ApiError::from_response(status, Some(correlation.clone()), b"");
                e.kind = ApiErrorKind::Server;
                e.summary = "HubSpot's answer did not list this record (neither its \
                             objectWriteTraceId nor its email): it may have been applied"
                    .into();
                Error::from(e)
            });
        }
        None
    }

    /// A batch HubSpot refused as a whole: learn what its error names, fail the records that
    /// carry it, send the rest again; split only what nothing explains.
    pub(super) fn rejected(&mut self, entries: Vec<Entry>, error: ApiError) {
        let mut targets = Vec::new();
        let mut suspects = None;
        for field in &error.errors {
            match read_error(field, &entries) {
                Finding::Cause(target) => {
                    if self.seen_causes.insert(target.clone()) {
                        self.causes.push(Cause {
                            target: target.clone(),
                            field: field.clone(),
                            status: error.status,
                            correlation_id: error.correlation_id.clone(),
                        });
                    }
                    targets.push(target);
                }
                Finding::Suspects(name) => suspects = suspects.or(Some(name)),
                Finding::Nothing => {}
            }
        }
        let mut rest = Vec::new();
        for entry in entries {
            let cause = self
                .causes
                .iter()
                .find(|c| targets.contains(&c.target) && c.target.matches(&entry))
                .cloned();
            match cause {
                Some(cause) => self.fail(entry, || cause.error(true)),
                None => rest.push(entry),
            }
        }
        if !targets.is_empty() {
            // The named records are out; the others go again with the next batch.
            for entry in rest.into_iter().rev() {
                self.enqueue(entry, true);
            }
            return;
        }
        if let Some(name) = suspects {
            // Some record carrying `name` is bad, which one the answer did not say.
            let (carrying, others): (Vec<Entry>, Vec<Entry>) =
                rest.into_iter().partition(|e| e.input.get(&name).is_some());
            if !others.is_empty() {
                for entry in others.into_iter().rev() {
                    self.enqueue(entry, true);
                }
                self.split_or_fail(carrying, error);
                return;
            }
            rest = carrying;
        }
        self.split_or_fail(rest, error);
    }

    fn split_or_fail(&mut self, mut entries: Vec<Entry>, error: ApiError) {
        match entries.len() {
            0 => {}
            1 => {
                let entry = entries.pop().expect("one entry");
                self.fail(entry, || Error::Api(Box::new(error.clone())));
            }
            n => {
                let second = entries.split_off(n / 2);
                for part in [entries, second] {
                    for entry in &part {
                        self.hold(entry);
                    }
                    self.groups.push_back(part);
                }
            }
        }
    }
}
