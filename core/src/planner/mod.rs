//! The bulk planner: which records go together in which batch, and what each answer means for
//! them. Pure state, no I/O and no clock: the driver (`bulk`) feeds it records and answers and
//! sends the batches it forms.
//!
//! - Records are matched to contacts by their id: an email (any case), the value of a unique
//!   property, or HubSpot's own id (see `matching.rs`). Records with the same id are merged
//!   into one input while waiting (the later record's values win); a record whose id is in a
//!   batch in flight waits for that batch, so the later record is always applied last.
//! - A run that updates only, creates only or fills empty fields reads each record's contact
//!   first (100 ids a request, see `reads.rs`): contacts found are updated by HubSpot's own id
//!   (batch update, which never creates), the others upserted, or skipped as the mode says.
//! - Before a record is sent it is checked against the portal's property definitions, when they
//!   are known, and against every cause learned from HubSpot's answers so far: a record that
//!   HubSpot would refuse fails at once, unsent, with HubSpot's code.
//! - A rejected batch (400, 409, or inputs a 207 left out) teaches causes: HubSpot names the
//!   property, the value or the address it refused (maybe only the first bad input). The records
//!   that carry a cause fail; the others go again with the next batch. Only what no cause
//!   explains is split in halves until each bad record stands alone, unless refusals of the
//!   same shape have mostly been bad records (see [`UNEXPLAINED_LIMIT`]): then the refused
//!   batch fails whole, so that a cause HubSpot never names costs one request per batch.
//! - A refusal naming a property that new contacts must have (an admin's validation rule,
//!   `MISSING_REQUIRED_PROPERTY`) fails only the records that lack it and are new: which of
//!   them exist is read, 100 addresses a request (see `reads.rs`); the rest go on.
//! - The window of batches in flight is one until an answer has shown that HubSpot accepts the
//!   data, then `cap` (at once, where the caller opens it: see [`Planner::open_window`]); the
//!   pacer (not the planner) keeps the rate under HubSpot's limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub(crate) use crate::api::Landed;
use crate::api::{self, BatchInput, Found, V3_BATCH_MAX};
use crate::error::Error;
use crate::schema::Schema;

mod answers;
mod causes;
mod matching;
mod reads;

use causes::{Cause, Target};
pub use matching::{Fill, Matching, Mode, Skip};

/// Which batch an answer belongs to.
pub type BatchId = u64;

/// What became of one record.
#[derive(Debug)]
pub struct Outcome {
    /// The record's position in the input.
    pub index: usize,
    /// The id it was matched on (its email, unless the run matches on another property).
    pub id: String,
    /// Its email: the id, or the `email` property it sets when matched on another property.
    pub email: Option<String>,
    pub fate: Fate,
}

/// A record landed, was skipped (the sync mode said not to write it), was not sent because
/// the sync state shows HubSpot holds it already (unchanged, on the object with this id), or
/// failed; or, in a dry run, would be written (`is_new`: as a new contact).
#[derive(Debug)]
pub enum Fate {
    Landed(Landed),
    Skipped(Skip),
    Unchanged { object_id: i64 },
    Failed(Error),
    Planned { is_new: bool },
}

/// A request the planner wants sent: a batch upsert, a batch update by HubSpot's ids, or a
/// batch read (which of these contacts exist, and what they hold), each with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Upsert(Vec<u8>),
    Update(Vec<u8>),
    Read(Vec<u8>),
}

/// A 2xx answer to a batch request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) correlation_id: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// A batch formed (in flight) or a part of a split batch (waiting): its entries, and the shape
/// of the unexplained refusal it was split for, if it was.
#[derive(Debug)]
struct Batch {
    entries: Vec<Entry>,
    split_for: Option<String>,
    /// A batch read (which of these contacts exist, what they hold), not a write.
    read: Option<reads::Read>,
}

/// What splitting for one shape of unexplained refusal has shown: records HubSpot refused when
/// sent alone, and records that landed from the parts.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    refused_alone: usize,
    landed: usize,
}

/// How many records refused alone for the same unnamed cause, more than landed from the
/// parts split for it, make the planner stop splitting for it: a refusal of that shape then
/// fails its whole batch at once.
pub(crate) const UNEXPLAINED_LIMIT: usize = 3;

/// One contact to send: the records merged under its id.
#[derive(Debug)]
struct Entry {
    input: BatchInput,
    /// How ids compare (see [`Matching::key`]).
    key: String,
    /// The records merged into it, in input order.
    members: Vec<usize>,
    /// The contact exists (a batch read found it, or the record names it by HubSpot's id):
    /// what new contacts must have does not concern it.
    exists: bool,
    /// Whether it exists has been read.
    checked: bool,
    /// HubSpot's id of the contact, when known: the entry goes to batch update.
    object_id: Option<i64>,
}

impl Entry {
    fn key(&self) -> String {
        self.key.clone()
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
        self.exists |= later.exists;
        self.checked |= later.checked;
        self.object_id = self.object_id.or(later.object_id);
    }
}

#[derive(Debug)]
pub(crate) struct Planner {
    schema: Option<Arc<Schema>>,
    matching: Matching,
    /// Entries not sent yet, by key, and the order they came in.
    waiting: HashMap<u64, Entry>,
    queue: VecDeque<u64>,
    /// The waiting entry of each address (lower-case), for merging.
    by_email: HashMap<String, u64>,
    /// Parts of a split batch, each to go as a batch of its own, before anything else.
    groups: VecDeque<Batch>,
    /// Addresses in a batch in flight or in a split part: later records with them wait.
    busy: HashMap<String, usize>,
    in_flight: HashMap<BatchId, Batch>,
    /// Refusals that named no cause, by shape (see [`Tally`]).
    unexplained: HashMap<String, Tally>,
    /// Entries waiting for a batch read of their key (whether the contact exists, what it
    /// holds), by key, in input order; and the keys not read yet.
    parked: HashMap<String, Vec<Entry>>,
    to_read: VecDeque<String>,
    /// What batch reads found: the contact of each key read, or none.
    known: HashMap<String, Option<Arc<Found>>>,
    causes: Vec<Cause>,
    seen_causes: HashSet<Target>,
    outcomes: Vec<Outcome>,
    next_key: u64,
    next_batch: BatchId,
    window: usize,
    cap: usize,
    /// Results that named no input of their batch (logged by the driver).
    pub(crate) unmatched_results: usize,
    /// Fields left out of records read by labels: an export's read-only columns.
    pub(crate) left_out: std::collections::BTreeSet<String>,
    /// How many entries may wait before a batch goes out short.
    buffer: usize,
}

impl Planner {
    /// `cap` is the most batches in flight once HubSpot has accepted one.
    pub(crate) fn new(schema: Option<Arc<Schema>>, matching: Matching, cap: usize) -> Self {
        let cap = cap.max(1);
        Planner {
            schema,
            matching,
            waiting: HashMap::new(),
            queue: VecDeque::new(),
            by_email: HashMap::new(),
            groups: VecDeque::new(),
            busy: HashMap::new(),
            in_flight: HashMap::new(),
            unexplained: HashMap::new(),
            parked: HashMap::new(),
            to_read: VecDeque::new(),
            known: HashMap::new(),
            causes: Vec::new(),
            seen_causes: HashSet::new(),
            outcomes: Vec::new(),
            next_key: 0,
            next_batch: 0,
            window: 1,
            cap,
            unmatched_results: 0,
            left_out: Default::default(),
            buffer: (cap + 1) * V3_BATCH_MAX,
        }
    }

    /// How ids compare (see [`Matching::key`]).
    pub(crate) fn key(&self, id: &str) -> String {
        self.matching.key(id)
    }

    /// How many records batch `id` writes, if it is a write in flight (not a read).
    pub(crate) fn writes(&self, id: BatchId) -> Option<usize> {
        let batch = self.in_flight.get(&id)?;
        match batch.read {
            Some(_) => None,
            None => Some(batch.entries.iter().map(|e| e.members.len()).sum()),
        }
    }

    /// Whether more records are welcome: fewer are waiting than the open window can send.
    pub(crate) fn wants_input(&self) -> bool {
        self.waiting.len() + self.parked_len() < (self.window + 1) * V3_BATCH_MAX
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Opens the window before any answer: `cap` batches may go at once. A refusal that every
    /// batch shares then costs up to `cap` requests instead of one.
    pub(crate) fn open_window(&mut self) {
        self.window = self.cap;
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Nothing waits, nothing is split, nothing is in flight.
    pub(crate) fn is_done(&self) -> bool {
        self.waiting.is_empty()
            && self.groups.is_empty()
            && self.in_flight.is_empty()
            && self.parked.is_empty()
    }

    /// Whether HubSpot said a property does not exist that the definitions have: they are
    /// out of date.
    pub(crate) fn contradicts_definitions(&self) -> bool {
        let Some(schema) = &self.schema else {
            return false;
        };
        self.causes.iter().any(|c| {
            matches!(&c.target, Target::Property(name) if schema.has(name))
                && c.field.code.as_deref() == Some("PROPERTY_DOESNT_EXIST")
        })
    }

    /// The outcomes decided since the last call, in no particular order.
    pub(crate) fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }

    fn fail(&mut self, entry: Entry, error: impl Fn() -> Error) {
        for index in entry.members {
            self.outcomes.push(Outcome {
                index,
                id: entry.input.id.clone(),
                email: self.email_of(&entry.input),
                fate: Fate::Failed(error()),
            });
        }
    }

    fn land(&mut self, entry: Entry, landed: Landed) {
        for (k, index) in entry.members.into_iter().enumerate() {
            // Merged records: the first one created the contact, if any did.
            let is_new = landed.is_new && k == 0;
            self.outcomes.push(Outcome {
                index,
                id: entry.input.id.clone(),
                email: self.email_of(&entry.input),
                fate: Fate::Landed(Landed { is_new, ..landed }),
            });
        }
    }

    /// The email of a record: its id, or the `email` it sets when matched on another property.
    fn email_of(&self, input: &BatchInput) -> Option<String> {
        match self.matching.by_email() {
            true => Some(input.id.clone()),
            false => input.get("email").map(str::to_owned),
        }
    }

    fn skip(&mut self, entry: Entry, code: &'static str, reason: &'static str) {
        for index in entry.members {
            self.outcomes.push(Outcome {
                index,
                id: entry.input.id.clone(),
                email: self.email_of(&entry.input),
                fate: Fate::Skipped(Skip { code, reason }),
            });
        }
    }

    /// A cause already learned that refuses `entry`.
    fn learned_cause(&self, entry: &Entry) -> Option<&Cause> {
        self.causes.iter().find(|c| c.target.matches(entry))
    }

    /// An entry about to go out, checked against the causes learned: it fails (unsent) when one
    /// refuses it, waits for a batch read when it lacks what new contacts must have, else it
    /// is returned to be sent. `held`: its address is held already.
    fn screened(&mut self, entry: Entry, held: bool) -> Option<Entry> {
        match self.learned_cause(&entry).cloned() {
            None => Some(entry),
            Some(cause) if matches!(cause.target, Target::Lacks(_)) && !entry.checked => {
                if held {
                    self.release(&entry);
                }
                self.park(entry);
                None
            }
            Some(cause) => {
                if held {
                    self.release(&entry);
                }
                self.fail(entry, || cause.error(false));
                None
            }
        }
    }

    /// Takes one record (its position in the input, and what it sets).
    pub(crate) fn push(&mut self, index: usize, mut input: BatchInput) {
        let relabelled = match (&self.schema, self.matching.labels) {
            (Some(schema), true) => schema.relabel(&mut input.properties, &mut self.left_out),
            _ => Ok(()),
        };
        if let Some(error) = relabelled.err().or_else(|| {
            self.schema
                .as_ref()
                .and_then(|s| s.refusal(&input.properties))
        }) {
            self.outcomes.push(Outcome {
                index,
                email: self.email_of(&input),
                id: input.id,
                fate: Fate::Failed(error),
            });
            return;
        }
        let object_id = match self.matching.by_object_id() {
            true => input.id.parse().ok(),
            false => None,
        };
        let entry = Entry {
            key: self.matching.key(&input.id),
            input,
            members: vec![index],
            exists: object_id.is_some(),
            checked: false,
            object_id,
        };
        if self.matching.reads_first() {
            self.park(entry);
            return;
        }
        if let Some(entry) = self.screened(entry, false) {
            self.enqueue(entry, false);
        }
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
    pub(crate) fn next_batch(&mut self, flush: bool) -> Option<(BatchId, Call)> {
        if self.in_flight.len() >= self.window {
            return None;
        }
        if let Some(read) = self.next_read(flush) {
            return Some(read);
        }
        let (batch, split_for) = match self.groups.pop_front() {
            Some(group) => {
                // The part's addresses were held while it waited; the batch holds them now.
                let mut kept = Vec::with_capacity(group.entries.len());
                for entry in group.entries {
                    if let Some(entry) = self.screened(entry, true) {
                        self.release(&entry);
                        kept.push(entry);
                    }
                }
                (kept, group.split_for)
            }
            None => (self.fresh_batch(flush)?, None),
        };
        if batch.is_empty() {
            return self.next_batch(flush);
        }
        for entry in &batch {
            self.hold(entry);
        }
        let call = self.write_call(&batch);
        let id = self.next_batch;
        self.next_batch += 1;
        self.in_flight.insert(
            id,
            Batch {
                entries: batch,
                split_for,
                read: None,
            },
        );
        Some((id, call))
    }

    /// The request that writes a batch: an update by HubSpot's ids when they are known (a
    /// batch is of one kind), else an upsert by the run's id property.
    fn write_call(&self, batch: &[Entry]) -> Call {
        let traces: Vec<String> = batch.iter().map(|e| e.members[0].to_string()).collect();
        let traces = traces.iter().map(String::as_str);
        if batch[0].object_id.is_some() {
            Call::Update(api::v3_batch_update_body(traces.zip(batch).map(
                |(t, e)| (t, e.object_id.expect("a batch is of one kind"), &e.input),
            )))
        } else {
            Call::Upsert(api::v3_batch_upsert_body(
                &self.matching.id_property,
                traces.zip(batch.iter().map(|e| &e.input)),
            ))
        }
    }

    /// Up to 100 waiting entries of one kind (updates by HubSpot's id, or upserts), whose
    /// ids are not busy: a full batch of either kind, or the first kind ready when `flush`
    /// or the waiting room is full.
    fn fresh_batch(&mut self, flush: bool) -> Option<Vec<Entry>> {
        let free = |k: &u64| !self.busy.contains_key(&self.waiting[k].key);
        let ready = |update: bool| {
            self.queue
                .iter()
                .filter(|k| free(k) && self.waiting[k].object_id.is_some() == update)
                .take(V3_BATCH_MAX)
                .count()
        };
        let (updates, upserts) = (ready(true), ready(false));
        let full = self.waiting.len() >= self.buffer;
        let flush = flush && !self.reading();
        let first = self.queue.iter().find(|k| free(k))?;
        let update = match (updates, upserts) {
            (V3_BATCH_MAX, _) => true,
            (_, V3_BATCH_MAX) => false,
            _ if flush || full => self.waiting[first].object_id.is_some(),
            _ => return None,
        };
        let mut batch = Vec::with_capacity(V3_BATCH_MAX);
        let mut rest = VecDeque::with_capacity(self.queue.len());
        while let Some(k) = self.queue.pop_front() {
            let entry = &self.waiting[&k];
            if batch.len() == V3_BATCH_MAX
                || self.busy.contains_key(&entry.key)
                || entry.object_id.is_some() != update
            {
                rest.push_back(k);
                continue;
            }
            let entry = self.waiting.remove(&k).expect("queued entries wait");
            self.by_email.remove(&entry.key());
            if let Some(entry) = self.screened(entry, false) {
                batch.push(entry);
            }
        }
        self.queue = rest;
        Some(batch)
    }

    /// Takes back batch `id`, formed but not sent (the rate window had no room): it goes first
    /// next time, as it is.
    pub(crate) fn unsend(&mut self, id: BatchId) {
        if let Some(batch) = self.in_flight.remove(&id) {
            // Its addresses stay held, by the part now instead of the batch.
            self.groups.push_front(batch);
        }
    }

    /// Reads the answer to batch `id`. A failure that concerns every record (the token, the
    /// daily limit, HubSpot or the network failing beyond the retries) fails this batch's
    /// records with it and is returned: the run should stop.
    pub(crate) fn on_answer(&mut self, id: BatchId, answer: Result<Reply, Error>) -> Option<Error> {
        let Batch {
            entries,
            split_for,
            read,
        } = self.in_flight.remove(&id)?;
        for entry in &entries {
            self.release(entry);
        }
        if let Some(keys) = read {
            return self.read_answered(keys, answer);
        }
        match answer {
            Ok(reply) => self.accepted(entries, reply, split_for),
            // The id property cannot match records, or the portal has no such object type:
            // no batch of this run can land.
            Err(Error::Api(e))
                if e.status == 400
                    && (e.summary.contains("non-unique")
                        || e.summary.contains("Unable to infer object type")) =>
            {
                let error = Error::Api(e);
                for entry in entries {
                    self.fail(entry, || error.clone());
                }
                Some(error)
            }
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

    /// Fails every batch in flight with `error()` (the run was interrupted: they may have been
    /// applied), and every record not sent yet with `not_sent()`.
    pub(crate) fn stop(&mut self, in_flight: impl Fn() -> Error, not_sent: impl Fn() -> Error) {
        let batches: Vec<Vec<Entry>> = self.in_flight.drain().map(|(_, b)| b.entries).collect();
        for entry in batches.into_iter().flatten() {
            self.fail(entry, &in_flight);
        }
        self.fail_unsent(not_sent);
    }

    /// Fails every record not sent yet.
    pub(crate) fn fail_unsent(&mut self, not_sent: impl Fn() -> Error) {
        let groups: Vec<Vec<Entry>> = self.groups.drain(..).map(|g| g.entries).collect();
        for entry in groups.into_iter().flatten() {
            self.fail(entry, &not_sent);
        }
        self.to_read.clear();
        let parked: Vec<Vec<Entry>> = self.parked.drain().map(|(_, e)| e).collect();
        for entry in parked.into_iter().flatten() {
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
