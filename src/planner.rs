//! The bulk planner: which records go together in which batch, and what each answer means for
//! them. Pure state, no I/O and no clock: the driver (`bulk`) feeds it records and answers and
//! sends the batches it forms.
//!
//! - Records with the same email (any case) are merged into one input while waiting (the later
//!   record's values win); a record whose email is in a batch in flight waits for that batch, so
//!   the later record is always applied last.
//! - Before a record is sent it is checked against the portal's property definitions, when they
//!   are known, and against every cause learned from HubSpot's answers so far: a record that
//!   HubSpot would refuse fails at once, unsent, with HubSpot's code.
//! - A rejected batch (400, 409, or inputs a 207 left out) teaches causes: HubSpot names the
//!   property, the value or the address it refused (maybe only the first bad input). The records
//!   that carry a cause fail; the others go again with the next batch. Only what no cause
//!   explains is split in halves until each bad record stands alone.
//! - The window of batches in flight is one until an answer has shown that HubSpot accepts the
//!   data, then `cap`; the pacer (not the planner) keeps the rate under HubSpot's limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub use crate::api::Landed;
use crate::api::{self, BatchInput, V3_BATCH_MAX};
use crate::error::{ApiError, ApiErrorKind, Error, FieldError};
use crate::schema::Schema;

/// Which batch an answer belongs to.
pub type BatchId = u64;

/// What became of one record.
#[derive(Debug)]
pub struct Outcome {
    /// The record's position in the input.
    pub index: usize,
    pub email: String,
    pub result: Result<Landed, Error>,
}

/// A 2xx answer to a batch request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub correlation_id: Option<String>,
    pub body: Vec<u8>,
}

/// One contact to send: the records merged under its email.
#[derive(Debug)]
struct Entry {
    input: BatchInput,
    /// The records merged into it, in input order.
    members: Vec<usize>,
}

impl Entry {
    fn key(&self) -> String {
        self.input.email.to_lowercase()
    }

    /// The addresses the entry may come back under: its id, and the email it sets.
    fn addresses(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.key()).chain(self.input.get("email").map(str::to_lowercase))
    }

    /// Later values win, in the order the records came.
    fn absorb(&mut self, later: Entry) {
        for (name, value) in later.input.properties {
            match self.input.properties.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.input.properties.push((name, value)),
            }
        }
        self.members.extend(later.members);
    }
}

/// What a cause refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// Any value of this property (it does not exist, or is read-only).
    Property(String),
    /// This value of this property (or this part of a `;`-joined one).
    Value(String, String),
    /// The contact with this address (lower-case).
    Email(String),
}

/// A cause learned from an answer: what it refuses, and the error the records that carry it get.
#[derive(Debug, Clone)]
struct Cause {
    target: Target,
    field: FieldError,
    status: u16,
    correlation_id: Option<String>,
}

impl Target {
    fn matches(&self, entry: &Entry) -> bool {
        match self {
            Target::Property(name) => entry.input.get(name).is_some(),
            Target::Value(name, value) => entry.input.get(name).is_some_and(|v| {
                v == value || v.trim_start_matches(';').split(';').any(|p| p == value)
            }),
            Target::Email(address) => entry.addresses().any(|a| a == *address),
        }
    }
}

impl Cause {
    fn error(&self, sent: bool) -> Error {
        let said = self.field.message.as_deref().unwrap_or("refused");
        let how = if sent {
            ""
        } else {
            "; not sent: an earlier answer named this cause"
        };
        Error::Refused {
            message: format!(
                "HubSpot refused {} {}: {said}{how} [HTTP {}, correlation id {}]",
                self.field.name.as_deref().unwrap_or("?"),
                self.field.code.as_deref().unwrap_or("INVALID"),
                self.status,
                self.correlation_id.as_deref().unwrap_or("none")
            ),
            status: Some(self.status),
            correlation_id: self.correlation_id.clone(),
            field: self.field.clone(),
        }
    }
}

/// Whether `text` names `needle` as a whole word (not inside a longer address or word), and
/// where first.
fn mention(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let lower = text.to_lowercase();
    let needle = needle.to_lowercase();
    let part_of_word =
        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "@.-_+".contains(c));
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = lower[..start].chars().next_back();
        let after = lower[end..].chars().next();
        // A trailing '.' ends a sentence, not an address.
        let after_ok = !part_of_word(after)
            || (after == Some('.')
                && lower[end + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace));
        if !part_of_word(before) && after_ok {
            return Some(start);
        }
        from = start + needle.len().max(1);
    }
    None
}

const PROPERTY_CODES: &[&str] = &["PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE", "READ_ONLY"];

/// What one error of a rejected batch says about the entries of that batch: a cause that names
/// some of them, or only the property that some of them carry ("suspects").
enum Finding {
    Cause(Target),
    Suspects(String),
    Nothing,
}

fn read_error(field: &FieldError, entries: &[Entry]) -> Finding {
    let code = field.code.as_deref().unwrap_or("");
    let message = field.message.as_deref().unwrap_or("");
    let name = field.name.as_deref();
    if code == "INVALID_EMAIL" || name == Some("email") {
        let named = entries
            .iter()
            .flat_map(|e| e.addresses())
            .filter_map(|a| mention(message, &a).map(|at| (at, a)))
            .min();
        return match named {
            Some((_, address)) => Finding::Cause(Target::Email(address)),
            None => Finding::Nothing,
        };
    }
    let Some(name) = name else {
        return Finding::Nothing;
    };
    let carriers: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.input.get(name).is_some())
        .collect();
    if carriers.is_empty() {
        return Finding::Nothing;
    }
    if PROPERTY_CODES.iter().any(|c| code.contains(c)) {
        return Finding::Cause(Target::Property(name.to_owned()));
    }
    // A value that does not fit: the one the message names first (the allowed options, which
    // the message may list after it, come later).
    let named = carriers
        .iter()
        .filter_map(|e| e.input.get(name))
        .flat_map(|v| std::iter::once(v).chain(v.trim_start_matches(';').split(';')))
        .filter_map(|v| mention(message, v).map(|at| (at, v.to_owned())))
        .min();
    match named {
        Some((_, value)) => Finding::Cause(Target::Value(name.to_owned(), value)),
        None => Finding::Suspects(name.to_owned()),
    }
}

#[derive(Debug)]
pub struct Planner {
    schema: Option<Arc<Schema>>,
    /// Entries not sent yet, by key, and the order they came in.
    waiting: HashMap<u64, Entry>,
    queue: VecDeque<u64>,
    /// The waiting entry of each address (lower-case), for merging.
    by_email: HashMap<String, u64>,
    /// Parts of a split batch, each to go as a batch of its own, before anything else.
    groups: VecDeque<Vec<Entry>>,
    /// Addresses in a batch in flight or in a split part: later records with them wait.
    busy: HashMap<String, usize>,
    in_flight: HashMap<BatchId, Vec<Entry>>,
    causes: Vec<Cause>,
    seen_causes: HashSet<Target>,
    outcomes: Vec<Outcome>,
    next_key: u64,
    next_batch: BatchId,
    window: usize,
    cap: usize,
    /// Results that named no input of their batch (logged by the driver).
    pub unmatched_results: usize,
    /// How many entries may wait before a batch goes out short.
    buffer: usize,
}

impl Planner {
    /// `cap` is the most batches in flight once HubSpot has accepted one.
    pub fn new(schema: Option<Arc<Schema>>, cap: usize) -> Self {
        let cap = cap.max(1);
        Planner {
            schema,
            waiting: HashMap::new(),
            queue: VecDeque::new(),
            by_email: HashMap::new(),
            groups: VecDeque::new(),
            busy: HashMap::new(),
            in_flight: HashMap::new(),
            causes: Vec::new(),
            seen_causes: HashSet::new(),
            outcomes: Vec::new(),
            next_key: 0,
            next_batch: 0,
            window: 1,
            cap,
            unmatched_results: 0,
            buffer: (cap + 1) * V3_BATCH_MAX,
        }
    }

    /// Whether more records are welcome: fewer are waiting than the open window can send.
    pub fn wants_input(&self) -> bool {
        self.waiting.len() < (self.window + 1) * V3_BATCH_MAX
    }

    pub fn window(&self) -> usize {
        self.window
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Nothing waits, nothing is split, nothing is in flight.
    pub fn is_done(&self) -> bool {
        self.waiting.is_empty() && self.groups.is_empty() && self.in_flight.is_empty()
    }

    /// Whether HubSpot said a property does not exist that the definitions have: they are
    /// out of date.
    pub fn contradicts_definitions(&self) -> bool {
        let Some(schema) = &self.schema else {
            return false;
        };
        self.causes.iter().any(|c| {
            matches!(&c.target, Target::Property(name) if schema.has(name))
                && c.field.code.as_deref() == Some("PROPERTY_DOESNT_EXIST")
        })
    }

    /// The outcomes decided since the last call, in no particular order.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }

    fn fail(&mut self, entry: Entry, error: impl Fn() -> Error) {
        for index in entry.members {
            self.outcomes.push(Outcome {
                index,
                email: entry.input.email.clone(),
                result: Err(error()),
            });
        }
    }

    fn land(&mut self, entry: Entry, landed: Landed) {
        for (k, index) in entry.members.into_iter().enumerate() {
            // Merged records: the first one created the contact, if any did.
            let is_new = landed.is_new && k == 0;
            self.outcomes.push(Outcome {
                index,
                email: entry.input.email.clone(),
                result: Ok(Landed { is_new, ..landed }),
            });
        }
    }

    /// A cause already learned that refuses `entry`.
    fn learned_cause(&self, entry: &Entry) -> Option<&Cause> {
        self.causes.iter().find(|c| c.target.matches(entry))
    }

    /// Takes one record (its position in the input, and what it sets).
    pub fn push(&mut self, index: usize, input: BatchInput) {
        if let Some(error) = self
            .schema
            .as_ref()
            .and_then(|s| s.refusal(&input.properties))
        {
            self.outcomes.push(Outcome {
                index,
                email: input.email,
                result: Err(error),
            });
            return;
        }
        let entry = Entry {
            input,
            members: vec![index],
        };
        if let Some(cause) = self.learned_cause(&entry).cloned() {
            self.fail(entry, || cause.error(false));
            return;
        }
        self.enqueue(entry, false);
    }

    /// Puts an entry to wait: merged into the waiting entry of its address if there is one
    /// (`earlier`: this entry's records came first), else at the back (or the front).
    fn enqueue(&mut self, mut entry: Entry, earlier: bool) {
        let key = entry.key();
        if let Some(k) = self.by_email.get(&key) {
            let waiting = self.waiting.get_mut(k).expect("indexed entries wait");
            if earlier {
                std::mem::swap(waiting, &mut entry);
            }
            waiting.absorb(entry);
            return;
        }
        let k = self.next_key;
        self.next_key += 1;
        self.by_email.insert(key, k);
        self.waiting.insert(k, entry);
        if earlier {
            self.queue.push_front(k);
        } else {
            self.queue.push_back(k);
        }
    }

    fn hold(&mut self, entry: &Entry) {
        *self.busy.entry(entry.key()).or_default() += 1;
    }

    fn release(&mut self, entry: &Entry) {
        let key = entry.key();
        if let Some(n) = self.busy.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(&key);
            }
        }
    }

    /// The next batch to send, if the window has room and a batch is ready: a split part, or
    /// up to 100 waiting entries whose addresses are not busy. A short batch goes only when
    /// `flush` (the input has ended) or the waiting room is full. Returns the batch's id and
    /// its request body.
    pub fn next_batch(&mut self, flush: bool) -> Option<(BatchId, Vec<u8>)> {
        if self.in_flight.len() >= self.window {
            return None;
        }
        let batch = match self.groups.pop_front() {
            Some(group) => {
                // The part's addresses were held while it waited; the batch holds them now.
                let mut kept = Vec::with_capacity(group.len());
                for entry in group {
                    self.release(&entry);
                    match self.learned_cause(&entry).cloned() {
                        Some(cause) => self.fail(entry, || cause.error(false)),
                        None => kept.push(entry),
                    }
                }
                kept
            }
            None => self.fresh_batch(flush)?,
        };
        if batch.is_empty() {
            return self.next_batch(flush);
        }
        for entry in &batch {
            self.hold(entry);
        }
        let traces: Vec<String> = batch.iter().map(|e| e.members[0].to_string()).collect();
        let body = api::v3_batch_upsert_body(
            traces
                .iter()
                .map(String::as_str)
                .zip(batch.iter().map(|e| &e.input)),
        );
        let id = self.next_batch;
        self.next_batch += 1;
        self.in_flight.insert(id, batch);
        Some((id, body))
    }

    fn fresh_batch(&mut self, flush: bool) -> Option<Vec<Entry>> {
        let ready = self
            .queue
            .iter()
            .filter(|k| !self.busy.contains_key(&self.waiting[k].key()))
            .take(V3_BATCH_MAX)
            .count();
        let full = self.waiting.len() >= self.buffer;
        if ready == 0 || (ready < V3_BATCH_MAX && !flush && !full) {
            return None;
        }
        let mut batch = Vec::with_capacity(ready);
        let mut rest = VecDeque::with_capacity(self.queue.len());
        while let Some(k) = self.queue.pop_front() {
            if batch.len() == V3_BATCH_MAX || self.busy.contains_key(&self.waiting[&k].key()) {
                rest.push_back(k);
                continue;
            }
            let entry = self.waiting.remove(&k).expect("queued entries wait");
            self.by_email.remove(&entry.key());
            match self.learned_cause(&entry).cloned() {
                Some(cause) => self.fail(entry, || cause.error(false)),
                None => batch.push(entry),
            }
        }
        self.queue = rest;
        Some(batch)
    }

    /// Takes back batch `id`, formed but not sent (the rate window had no room): it goes first
    /// next time, as it is.
    pub fn unsend(&mut self, id: BatchId) {
        if let Some(batch) = self.in_flight.remove(&id) {
            // Its addresses stay held, by the part now instead of the batch.
            self.groups.push_front(batch);
        }
    }

    /// Reads the answer to batch `id`. A failure that concerns every record (the token, the
    /// daily limit, HubSpot or the network failing beyond the retries) fails this batch's
    /// records with it and is returned: the run should stop.
    pub fn on_answer(&mut self, id: BatchId, answer: Result<Reply, Error>) -> Option<Error> {
        let entries = self.in_flight.remove(&id)?;
        for entry in &entries {
            self.release(entry);
        }
        match answer {
            Ok(reply) => self.accepted(entries, reply),
            Err(Error::Api(e)) if matches!(e.status, 400 | 409) => {
                self.rejected(entries, *e);
                None
            }
            Err(error) => {
                for entry in entries {
                    self.fail(entry, || error.clone());
                }
                Some(error)
            }
        }
    }

    fn accepted(&mut self, entries: Vec<Entry>, reply: Reply) -> Option<Error> {
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
    fn rejected(&mut self, entries: Vec<Entry>, error: ApiError) {
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

    /// Fails every batch in flight with `error()` (the run was interrupted: they may have been
    /// applied), and every record not sent yet with `not_sent()`.
    pub fn stop(&mut self, in_flight: impl Fn() -> Error, not_sent: impl Fn() -> Error) {
        let batches: Vec<Vec<Entry>> = self.in_flight.drain().map(|(_, b)| b).collect();
        for entry in batches.into_iter().flatten() {
            self.fail(entry, &in_flight);
        }
        self.fail_unsent(not_sent);
    }

    /// Fails every record not sent yet.
    pub fn fail_unsent(&mut self, not_sent: impl Fn() -> Error) {
        let groups: Vec<Vec<Entry>> = self.groups.drain(..).collect();
        for entry in groups.into_iter().flatten() {
            self.fail(entry, &not_sent);
        }
        let waiting: Vec<Entry> = self
            .queue
            .drain(..)
            .filter_map(|k| self.waiting.remove(&k))
            .collect();
        for entry in waiting {
            self.fail(entry, &not_sent);
        }
        self.by_email.clear();
        self.busy.clear();
    }
}
