//! The bulk driver: reads records from a [`Source`], lets the [`Planner`] form batches, sends
//! them through a [`Sender`] as fast as the window and the pacer allow, and hands outcomes to a
//! [`Sink`]. It runs on the caller's thread and waits for answers in slices, asking
//! [`Hooks::check`] between them, so a signal handler stops it promptly.
//!
//! With a sync state ([`Ledger`]), each record read is first compared with what HubSpot last
//! accepted for its id: an unchanged record is not sent. Each write batch is journalled before
//! it goes out, and each answer's accepted writes are stored before its outcomes are handed on.
//!
//! The sender is the only I/O: the client's (requests as tasks on its runtime) in production,
//! a scripted one in the tests below.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::api::BatchInput;
use crate::context::{Hooks, Level, SLICE};
use crate::error::{Error, Result, Stop};
use crate::planner::{BatchId, Call, Fate, Outcome, Planner, Reply};
use crate::schema::Schema;
use crate::state::{Accepted, Fingerprint, Ledger};

/// Records read from the caller, with their positions in the input.
pub struct Chunk {
    pub records: Vec<(usize, BatchInput)>,
    /// No records follow.
    pub done: bool,
    /// Reading failed after these records (the caller keeps its own cause): the run stops, and
    /// these records fail as not sent, like every other record it did not send.
    pub failed: Option<Error>,
}

pub trait Source {
    /// Up to `max` more records.
    fn read(&mut self, max: usize) -> Chunk;
}

pub trait Sink {
    /// Outcomes as they are decided. An error stops the run.
    fn take(&mut self, outcomes: Vec<Outcome>) -> Result<()>;
}

/// A source whose first chunk was read already.
pub(crate) struct Prefetched<'a> {
    first: Option<Chunk>,
    rest: &'a mut dyn Source,
}

impl<'a> Prefetched<'a> {
    pub(crate) fn new(first: Chunk, rest: &'a mut dyn Source) -> Self {
        Prefetched {
            first: Some(first),
            rest,
        }
    }
}

impl Source for Prefetched<'_> {
    fn read(&mut self, max: usize) -> Chunk {
        match self.first.take() {
            Some(chunk) => chunk,
            None => self.rest.read(max),
        }
    }
}

/// A batch's answer.
pub(crate) type Answer = (BatchId, Result<Reply>);
/// Where a batch's answer goes.
pub(crate) type Done = mpsc::Sender<Answer>;

/// Why a batch cannot go now.
#[derive(Debug)]
pub(crate) enum NoRoom {
    /// The rate window has room again after this long.
    For(Duration),
    /// The wait would end past the deadline of a request: the run stops with this error.
    PastDeadline(Box<Error>),
}

pub(crate) trait Sender {
    /// Reserves room for one request in the rate window (the slot it took), or says why not.
    fn try_reserve(&self) -> std::result::Result<Instant, NoRoom>;
    /// Sends one request (a batch upsert or read) in the room reserved at `slot`; the answer
    /// goes to `done`.
    fn send(&self, id: BatchId, call: Call, slot: Instant, done: Done);
    /// Abandons every request in flight.
    fn cancel_all(&self);
    /// How long a stop that is not a signal waits for the answers of batches in flight (the
    /// client's request timeout).
    fn patience(&self) -> Duration;
    /// How long the first batch, sent alone, is waited for before the others go too (None:
    /// until its answer). Waiting longer than a good part of the rate window leaves that part
    /// unused, which costs more than a refusal every batch would share.
    fn opens_after(&self) -> Option<Duration> {
        None
    }
}

/// Checks every record `source` gives as a run would before sending it, against the portal's
/// property definitions (`schema`; none: nothing is checked beyond what the source did), and
/// sends nothing: only the records they refuse reach `sink`. With a sync state (`ledger`),
/// every record has an outcome: refused, unchanged, or planned (`is_new`: the state holds
/// nothing for its id).
/// `matching`: how ids compare, and whether records name properties and options by their
/// labels too (an export's).
pub fn check(
    source: &mut dyn Source,
    sink: &mut dyn Sink,
    schema: Option<&Schema>,
    matching: &crate::planner::Matching,
    ledger: &mut dyn Ledger,
) -> Result<()> {
    let mut left_out = std::collections::BTreeSet::new();
    let mut sending = HashSet::new();
    loop {
        let chunk = source.read(1000);
        let mut outcomes = Vec::new();
        let mut passed = Vec::new();
        for (index, mut input) in chunk.records {
            let relabelled = match (schema, matching.labels) {
                (Some(schema), true) => schema.relabel(&mut input.properties, &mut left_out),
                _ => Ok(()),
            };
            let refusal = relabelled
                .err()
                .or_else(|| schema.and_then(|s| s.refusal(&input.properties)));
            match refusal {
                Some(error) => outcomes.push(Outcome {
                    index,
                    email: Some(input.id.clone()),
                    id: input.id,
                    fate: Fate::Failed(error),
                }),
                None if ledger.active() => passed.push((index, input)),
                None => {}
            }
        }
        if !passed.is_empty() {
            let keys: Vec<String> = passed.iter().map(|(_, i)| matching.key(&i.id)).collect();
            let held = ledger.recall(&keys)?;
            for (((index, input), key), held) in passed.into_iter().zip(keys).zip(held) {
                let fate = match held {
                    Some(held)
                        if held.fingerprint == Fingerprint::of(&input)
                            && !sending.contains(&key) =>
                    {
                        Fate::Unchanged {
                            object_id: held.object_id,
                        }
                    }
                    held => {
                        sending.insert(key);
                        Fate::Planned {
                            is_new: held.is_none(),
                        }
                    }
                };
                outcomes.push(Outcome {
                    index,
                    email: input.get("email").map(str::to_owned),
                    id: input.id,
                    fate,
                });
            }
        }
        sink.take(outcomes)?;
        if let Some(error) = chunk.failed {
            return Err(error);
        }
        if chunk.done {
            return Ok(());
        }
    }
}

/// Runs a bulk upsert to the end, or until a failure of the whole run (returned; every record
/// read has its outcome in the sink by then). `ledger` is the sync state ([`crate::state`]).
pub(crate) fn run(
    planner: &mut Planner,
    source: &mut dyn Source,
    sender: &dyn Sender,
    sink: &mut dyn Sink,
    ledger: &mut dyn Ledger,
    hooks: &dyn Hooks,
) -> Result<()> {
    let (done_tx, done_rx) = mpsc::channel::<Answer>();
    let mut run = Run {
        planner,
        sender,
        sink,
        ledger,
        pending: HashMap::new(),
        sending: HashSet::new(),
        unchanged: Vec::new(),
        journalled: HashSet::new(),
        exhausted: false,
        failure: None,
        alone_since: None,
    };
    let mut last_check = Instant::now();
    loop {
        if let Err(e) = run.read_ahead(source) {
            run.settle_if_stopped(&e, &done_rx, hooks);
            return run.abort("the input failed", e);
        }
        let opens_in = run.open_if_slow(sender.opens_after());
        let wait = run.send_ready(&done_tx).min(opens_in.unwrap_or(SLICE));
        if let Err(e) = run.deliver(None) {
            run.settle_if_stopped(&e, &done_rx, hooks);
            return run.abort("the run was stopped", e);
        }
        if let Some(end) = run.ended() {
            return end;
        }
        // Wait for an answer, room in the window, or the next slice.
        let got = done_rx.recv_timeout(wait.max(Duration::from_millis(1)));
        if last_check.elapsed() >= SLICE || matches!(got, Err(RecvTimeoutError::Timeout)) {
            last_check = Instant::now();
            if let Err(e) = hooks.check() {
                sender.cancel_all();
                // Answers that came in before the interrupt still count.
                for (id, answer) in got.into_iter().chain(done_rx.try_iter()) {
                    run.planner.on_answer(id, answer);
                    // Kept in the state as they are; the run ends either way.
                    let _ = run.deliver(Some(id));
                }
                return run.abort("the run was interrupted", e);
            }
        }
        if let Ok((id, answer)) = got {
            let failed = run.planner.on_answer(id, answer);
            // Outcomes go out as soon as they are known, before more input is read.
            if let Err(e) = run.deliver(Some(id)) {
                run.settle_if_stopped(&e, &done_rx, hooks);
                return run.abort("the run was stopped", e);
            }
            if let Some(error) = failed {
                // The whole error (it may quote HubSpot's text) only at DEBUG.
                if hooks.enabled(Level::Warning) {
                    hooks.log(
                        Level::Warning,
                        &format!("the bulk run stops: {}", error.brief()),
                    );
                }
                if hooks.enabled(Level::Debug) {
                    hooks.log(Level::Debug, &format!("the bulk run stops: {error}"));
                }
                run.failure.get_or_insert(error);
            }
        }
    }
}

/// One run's state between the steps of its loop.
struct Run<'a> {
    planner: &'a mut Planner,
    sender: &'a dyn Sender,
    sink: &'a mut dyn Sink,
    ledger: &'a mut dyn Ledger,
    /// With a sync state: each record given to the planner and not decided yet, by its index
    /// (its key and fingerprint, stored when it lands).
    pending: HashMap<usize, (String, Fingerprint)>,
    /// The keys of records this run sends: a later record with the same key is sent too,
    /// whatever the state holds, so that it is applied after the earlier one.
    sending: HashSet<String>,
    /// Outcomes of records the state showed unchanged, not handed on yet.
    unchanged: Vec<Outcome>,
    /// Write batches the journal has as sent and not answered.
    journalled: HashSet<crate::planner::BatchId>,
    /// The source has no more records.
    exhausted: bool,
    /// A failure of the whole run: nothing more is sent, the batches in flight are awaited.
    failure: Option<Error>,
    /// When the first batch went out alone (the window of one before any answer).
    alone_since: Option<Instant>,
}

impl Run<'_> {
    /// Opens the window when the first batch, sent alone, has waited `after` for its answer;
    /// returns how long until it would, while it still waits.
    fn open_if_slow(&mut self, after: Option<Duration>) -> Option<Duration> {
        let (since, after) = (self.alone_since?, after?);
        if self.planner.window() != 1 || self.planner.in_flight() == 0 {
            return None;
        }
        let left = (since + after).saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.planner.open_window();
            return None;
        }
        Some(left)
    }

    /// Reads as far ahead as the window can use.
    fn read_ahead(&mut self, source: &mut dyn Source) -> Result<()> {
        while self.failure.is_none() && !self.exhausted && self.planner.wants_input() {
            let chunk = source.read(100);
            self.exhausted = chunk.done;
            if self.ledger.active() {
                self.screen(chunk.records)?;
            } else {
                for (index, input) in chunk.records {
                    self.planner.push(index, input);
                }
            }
            if let Some(error) = chunk.failed {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Gives the planner the records whose properties differ from what the state holds for
    /// their id; the others are unchanged and not sent.
    fn screen(&mut self, records: Vec<(usize, crate::api::BatchInput)>) -> Result<()> {
        let keys: Vec<String> = records
            .iter()
            .map(|(_, i)| self.planner.key(&i.id))
            .collect();
        let held = self.ledger.recall(&keys)?;
        for (((index, input), key), held) in records.into_iter().zip(keys).zip(held) {
            let fingerprint = Fingerprint::of(&input);
            match held {
                Some(held) if held.fingerprint == fingerprint && !self.sending.contains(&key) => {
                    self.unchanged.push(Outcome {
                        index,
                        email: input.get("email").map(str::to_owned),
                        id: input.id,
                        fate: Fate::Unchanged {
                            object_id: held.object_id,
                        },
                    });
                }
                _ => {
                    self.sending.insert(key.clone());
                    self.pending.insert(index, (key, fingerprint));
                    self.planner.push(index, input);
                }
            }
        }
        Ok(())
    }

    /// Sends what the window and the rate limit allow; returns how long until the pacer has
    /// room again (at most a slice).
    fn send_ready(&mut self, done: &Done) -> Duration {
        if self.failure.is_some() {
            return SLICE;
        }
        while self.planner.in_flight() < self.planner.window() {
            // Reserve room only for a batch that is ready.
            let Some((id, call)) = self.planner.next_batch(self.exhausted) else {
                break;
            };
            match self.sender.try_reserve() {
                Ok(slot) => {
                    // The journal says a write is out before it is.
                    let journal = self.ledger.active().then(|| self.planner.writes(id));
                    if let Some(records) = journal.flatten() {
                        if let Err(error) = self.ledger.sent(id, records) {
                            self.planner.unsend(id);
                            self.failure.get_or_insert(error);
                            return SLICE;
                        }
                        self.journalled.insert(id);
                    }
                    if self.planner.window() == 1 {
                        self.alone_since.get_or_insert_with(Instant::now);
                    }
                    self.sender.send(id, call, slot, done.clone())
                }
                Err(NoRoom::For(pace)) => {
                    self.planner.unsend(id);
                    return pace.min(SLICE);
                }
                Err(NoRoom::PastDeadline(error)) => {
                    self.planner.unsend(id);
                    self.failure.get_or_insert(*error);
                    return SLICE;
                }
            }
        }
        SLICE
    }

    /// Hands the outcomes decided so far (`answered`: on the answer to this batch) to the
    /// sink, storing the writes HubSpot accepted first; the sink or the store refusing stops
    /// the run.
    fn deliver(&mut self, answered: Option<crate::planner::BatchId>) -> Result<()> {
        let mut outcomes = self.planner.take_outcomes();
        if self.ledger.active() {
            let mut accepted = Vec::new();
            for outcome in &outcomes {
                let Some((key, fingerprint)) = self.pending.remove(&outcome.index) else {
                    continue;
                };
                if let Fate::Landed(landed) = &outcome.fate {
                    accepted.push(Accepted {
                        key,
                        fingerprint,
                        object_id: landed.vid,
                    });
                }
            }
            let answered = answered.filter(|id| self.journalled.remove(id));
            if answered.is_some() || !accepted.is_empty() {
                self.ledger.answered(answered, &accepted)?;
            }
            outcomes.append(&mut self.unchanged);
        }
        self.sink.take(outcomes)
    }

    /// When the caller's own code stopped the run (not a signal), waits for the answers of
    /// the batches in flight, at most the sender's patience, so that their records end landed
    /// or refused rather than "may have been applied". Nothing more is sent; a signal meanwhile
    /// cuts the wait short.
    fn settle_if_stopped(&mut self, why: &Error, done: &mpsc::Receiver<Answer>, hooks: &dyn Hooks) {
        if why.stop() != Some(Stop::Code) {
            return;
        }
        let until = Instant::now() + self.sender.patience();
        while self.planner.in_flight() > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match done.recv_timeout(left.min(SLICE)) {
                Ok((id, answer)) => {
                    // A failure of the whole run changes nothing now: the run ends anyway.
                    let _ = self.planner.on_answer(id, answer);
                    let _ = self.deliver(Some(id));
                }
                Err(RecvTimeoutError::Timeout) if hooks.check().is_ok() => {}
                Err(_) => break,
            }
        }
        // The sink already refused once: what it is given now is kept, not reported.
        let _ = self.deliver(None);
    }

    /// How the run ends, once nothing is in flight: done, or its failure (every record not
    /// sent failing with it).
    fn ended(&mut self) -> Option<Result<()>> {
        if self.planner.in_flight() > 0 {
            return None;
        }
        if let Some(error) = self.failure.take() {
            self.planner.fail_unsent(|| Error::NotSent {
                why: format!("the run stopped before this record ({error})"),
            });
            return Some(self.deliver(None).and(Err(error)));
        }
        (self.exhausted && self.planner.is_done()).then_some(Ok(()))
    }

    /// Ends the run early (`why` says how) with `error`: records in flight may have been
    /// applied, the others were not sent.
    fn abort(&mut self, why: &str, error: Error) -> Result<()> {
        self.sender.cancel_all();
        self.planner.stop(
            || Error::Unanswered {
                why: why.to_owned(),
            },
            || Error::NotSent {
                why: why.to_owned(),
            },
        );
        let _ = self.deliver(None);
        Err(error)
    }
}

#[cfg(test)]
mod tests;
