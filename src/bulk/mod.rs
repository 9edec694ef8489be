//! The bulk driver: reads records from a [`Source`], lets the [`Planner`] form batches, sends
//! them through a [`Sender`] as fast as the window and the pacer allow, and hands outcomes to a
//! [`Sink`]. It runs on the caller's thread and waits for answers in slices, asking
//! [`Hooks::check`] between them, so a signal handler stops it promptly.
//!
//! The sender is the only I/O: the client's (requests as tasks on its runtime) in production,
//! a scripted one in the tests below.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::api::BatchInput;
use crate::context::{Hooks, Level, SLICE};
use crate::error::{Error, Result};
use crate::planner::{BatchId, Call, Fate, Outcome, Planner, Reply};
use crate::schema::Schema;

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
pub struct Prefetched<'a> {
    first: Option<Chunk>,
    rest: &'a mut dyn Source,
}

impl<'a> Prefetched<'a> {
    pub fn new(first: Chunk, rest: &'a mut dyn Source) -> Self {
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
pub type Answer = (BatchId, Result<Reply>);
/// Where a batch's answer goes.
pub type Done = mpsc::Sender<Answer>;

/// Why a batch cannot go now.
#[derive(Debug)]
pub enum NoRoom {
    /// The rate window has room again after this long.
    For(Duration),
    /// The wait would end past the deadline of a request: the run stops with this error.
    PastDeadline(Box<Error>),
}

pub trait Sender {
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
}

/// Checks every record `source` gives as a run would before sending it, against the portal's
/// property definitions (`schema`; none: nothing is checked beyond what the source did), and
/// sends nothing: only the records they refuse reach `sink`.
/// `labels`: records name properties and options by their labels too (an export's).
pub fn check(
    source: &mut dyn Source,
    sink: &mut dyn Sink,
    schema: Option<&Schema>,
    labels: bool,
) -> Result<()> {
    let mut left_out = std::collections::BTreeSet::new();
    loop {
        let chunk = source.read(1000);
        if let Some(schema) = schema {
            let refused = chunk
                .records
                .into_iter()
                .filter_map(|(index, mut input)| {
                    let relabelled = match labels {
                        true => schema.relabel(&mut input.properties, &mut left_out),
                        false => Ok(()),
                    };
                    let error = relabelled
                        .err()
                        .or_else(|| schema.refusal(&input.properties))?;
                    Some(Outcome {
                        index,
                        email: Some(input.id.clone()),
                        id: input.id,
                        fate: Fate::Failed(error),
                    })
                })
                .collect();
            sink.take(refused)?;
        }
        if let Some(error) = chunk.failed {
            return Err(error);
        }
        if chunk.done {
            return Ok(());
        }
    }
}

/// Runs a bulk upsert to the end, or until a failure of the whole run (returned; every record
/// read has its outcome in the sink by then).
pub fn run(
    planner: &mut Planner,
    source: &mut dyn Source,
    sender: &dyn Sender,
    sink: &mut dyn Sink,
    hooks: &dyn Hooks,
) -> Result<()> {
    let (done_tx, done_rx) = mpsc::channel::<Answer>();
    let mut run = Run {
        planner,
        sender,
        sink,
        exhausted: false,
        failure: None,
    };
    let mut last_check = Instant::now();
    loop {
        if let Err(e) = run.read_ahead(source) {
            run.settle_if_stopped(&e, &done_rx, hooks);
            return run.abort("the input failed", e);
        }
        let wait = run.send_ready(&done_tx);
        if let Err(e) = run.deliver() {
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
                }
                return run.abort("the run was interrupted", e);
            }
        }
        if let Ok((id, answer)) = got {
            let failed = run.planner.on_answer(id, answer);
            // Outcomes go out as soon as they are known, before more input is read.
            if let Err(e) = run.deliver() {
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
    /// The source has no more records.
    exhausted: bool,
    /// A failure of the whole run: nothing more is sent, the batches in flight are awaited.
    failure: Option<Error>,
}

impl Run<'_> {
    /// Reads as far ahead as the window can use.
    fn read_ahead(&mut self, source: &mut dyn Source) -> Result<()> {
        while self.failure.is_none() && !self.exhausted && self.planner.wants_input() {
            let chunk = source.read(100);
            self.exhausted = chunk.done;
            for (index, input) in chunk.records {
                self.planner.push(index, input);
            }
            if let Some(error) = chunk.failed {
                return Err(error);
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
                Ok(slot) => self.sender.send(id, call, slot, done.clone()),
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

    /// Hands the outcomes decided so far to the sink; the sink refusing stops the run.
    fn deliver(&mut self) -> Result<()> {
        self.sink.take(self.planner.take_outcomes())
    }

    /// When the caller's own code stopped the run (not a signal), waits for the answers of
    /// the batches in flight, at most the sender's patience, so that their records end landed
    /// or refused rather than "may have been applied". Nothing more is sent; a signal meanwhile
    /// cuts the wait short.
    fn settle_if_stopped(&mut self, why: &Error, done: &mpsc::Receiver<Answer>, hooks: &dyn Hooks) {
        if !matches!(why, Error::Stopped) {
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
                }
                Err(RecvTimeoutError::Timeout) if hooks.check().is_ok() => {}
                Err(_) => break,
            }
        }
        // The sink already refused once: what it is given now is kept, not reported.
        let _ = self.sink.take(self.planner.take_outcomes());
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
            return Some(self.sink.take(self.planner.take_outcomes()).and(Err(error)));
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
        let _ = self.sink.take(self.planner.take_outcomes());
        Err(error)
    }
}

#[cfg(test)]
mod tests;
