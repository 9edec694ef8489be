//! What an answer to a batch means for its records: landed, refused for a learned cause, to go
//! again, or split until the bad one stands alone.

use super::causes::{read_error, Cause, Finding};
use std::collections::HashMap;

use super::causes::{lacks, Target};
use super::{Batch, Entry, Landed, Planner, Reply, UNEXPLAINED_LIMIT};
use crate::api;
use crate::error::{ApiError, Error};

impl Planner {
    pub(super) fn accepted(
        &mut self,
        entries: Vec<Entry>,
        reply: Reply,
        split_for: Option<String>,
    ) -> Option<Error> {
        let Some(results) = api::parse_v3_batch(&reply.body) else {
            let error = Error::from(ApiError::not_understood(
                reply.status,
                reply.correlation_id,
                &reply.body,
                "the batch upsert",
                "; the records may have been applied",
            ));
            for entry in entries {
                self.fail(entry, || error.clone());
            }
            return Some(error);
        };
        self.window = self.cap;
        let mut by_trace: HashMap<String, usize> = HashMap::new();
        let mut by_address: HashMap<String, usize> = HashMap::new();
        // An update names its records by HubSpot's ids, which its results carry as `id`
        // whether or not they echo the trace id (the spec marks that echo optional).
        let mut by_id: HashMap<i64, usize> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            by_trace.insert(entry.members[0].to_string(), i);
            for address in entry.addresses() {
                by_address.insert(address, i);
            }
            if let Some(id) = entry.object_id {
                by_id.insert(id, i);
            }
        }
        let mut landed: Vec<Option<Landed>> = vec![None; entries.len()];
        for r in &results {
            let at = r
                .trace_id
                .as_ref()
                .and_then(|t| by_trace.get(t))
                .or_else(|| r.email.as_ref().and_then(|e| by_address.get(e)))
                .or_else(|| by_id.get(&r.vid));
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
        let mut count = 0;
        for (entry, landed) in entries.into_iter().zip(landed) {
            match landed {
                Some(l) => {
                    count += entry.members.len();
                    self.land(entry, l);
                }
                None => missing.push(entry),
            }
        }
        if let Some(shape) = split_for {
            self.unexplained.entry(shape).or_default().landed += count;
        }
        if missing.is_empty() {
            return None;
        }
        let missing = self.refused_inputs(missing, &reply);
        if missing.is_empty() {
            return None;
        }
        // A 207 lists why it left inputs out: read it as the 400 it stands for.
        let e = ApiError::refused_input(reply.status, reply.correlation_id.clone(), &reply.body);
        if !e.errors.is_empty() {
            self.rejected(missing, e);
            return None;
        }
        let correlation = reply.correlation_id.unwrap_or_else(|| "none".into());
        let status = reply.status;
        for entry in missing {
            self.fail(entry, || {
                Error::from(ApiError::unlisted(status, Some(correlation.clone())))
            });
        }
        None
    }

    /// The inputs a partial answer (a 207, or a 200 with `errors`) refused by name, through
    /// the `objectWriteTraceId` of each error: each is read as a batch of one that HubSpot
    /// refused with that error (its cause learned for later batches). Returns the entries no
    /// error names.
    fn refused_inputs(&mut self, missing: Vec<Entry>, reply: &Reply) -> Vec<Entry> {
        let errors: HashMap<String, Vec<u8>> = api::input_errors(&reply.body)
            .into_iter()
            .filter_map(|(trace, error)| Some((trace?, error)))
            .collect();
        if errors.is_empty() {
            return missing;
        }
        let mut rest = Vec::new();
        for entry in missing {
            match errors.get(&entry.members[0].to_string()) {
                Some(error) => {
                    let e =
                        ApiError::refused_input(reply.status, reply.correlation_id.clone(), error);
                    self.rejected(vec![entry], e);
                }
                None => rest.push(entry),
            }
        }
        rest
    }

    /// A batch HubSpot refused as a whole: learn what its error names, fail the records that
    /// carry it, send the rest again; split only what nothing explains.
    pub(super) fn rejected(&mut self, entries: Vec<Entry>, error: ApiError) {
        let mut targets = Vec::new();
        let mut suspects: Option<(String, bool)> = None;
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
                Finding::Suspects(name) => suspects = suspects.or(Some((name, false))),
                Finding::Lacking(name) => suspects = suspects.or(Some((name, true))),
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
                // Lacking what new contacts must have: whether it exists is read first.
                Some(cause) if matches!(cause.target, Target::Lacks(_)) => self.park(entry),
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
        if let Some((name, lacking)) = suspects {
            // Some record carrying `name` (or lacking it) is bad, which one the answer did not
            // say.
            let (carrying, others): (Vec<Entry>, Vec<Entry>) =
                rest.into_iter().partition(|e| lacks(e, &name) == lacking);
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

    /// Splits a refused batch in halves, to find the record HubSpot refused without naming
    /// it; a record alone fails. When splitting for refusals of this shape has mostly found
    /// bad records, the batch fails whole instead: halving then costs about two requests per
    /// record and saves few.
    fn split_or_fail(&mut self, mut entries: Vec<Entry>, error: ApiError) {
        let shape = shape_of(&error);
        let tally = self.unexplained.get(&shape).copied().unwrap_or_default();
        let hopeless =
            tally.refused_alone >= UNEXPLAINED_LIMIT && tally.refused_alone > tally.landed;
        match entries.len() {
            0 => {}
            1 => {
                self.unexplained.entry(shape).or_default().refused_alone += 1;
                let entry = entries.pop().expect("one entry");
                self.fail(entry, || Error::Api(Box::new(error.clone())));
            }
            _ if hopeless => {
                let e = error.adding(&format!(
                    "; HubSpot named no cause, and {} records sent alone were refused the \
                     same way, so this batch was not split further: this record may be good, \
                     and nothing of the batch was applied",
                    tally.refused_alone
                ));
                for entry in entries {
                    self.fail(entry, || Error::Api(Box::new(e.clone())));
                }
            }
            n => {
                // Depth first: the first half's parts go before the second half, so that a
                // record alone is reached in a few requests even one batch at a time.
                let second = entries.split_off(n / 2);
                for part in [second, entries] {
                    for entry in &part {
                        self.hold(entry);
                    }
                    self.groups.push_front(Batch {
                        entries: part,
                        split_for: Some(shape.clone()),
                        read: None,
                    });
                }
            }
        }
    }
}

/// What makes two refusals that named no cause the same kind: status, category, codes, and
/// the message with its numbers left out.
fn shape_of(error: &ApiError) -> String {
    let codes: Vec<&str> = error
        .errors
        .iter()
        .map(|f| f.code.as_deref().unwrap_or("-"))
        .collect();
    let said: String = error
        .summary
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(120)
        .collect();
    format!(
        "{} {} {} {said}",
        error.status,
        error.category.as_deref().unwrap_or("-"),
        codes.join(",")
    )
}
