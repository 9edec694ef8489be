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
use crate::client::{Hooks, Level, SLICE};
use crate::error::{Error, Result};
use crate::planner::{BatchId, Outcome, Planner, Reply};

/// Records read from the caller, with their positions in the input.
pub struct Chunk {
    pub records: Vec<(usize, BatchInput)>,
    /// No records follow.
    pub done: bool,
}

pub trait Source {
    /// Up to `max` more records. An error stops the run (the caller keeps its own cause); the
    /// records read before it are the source's to report.
    fn read(&mut self, max: usize) -> Result<Chunk>;
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
    fn read(&mut self, max: usize) -> Result<Chunk> {
        match self.first.take() {
            Some(chunk) => Ok(chunk),
            None => self.rest.read(max),
        }
    }
}

/// Where a batch's answer goes.
pub type Done = mpsc::Sender<(BatchId, Result<Reply>)>;

pub trait Sender {
    /// Reserves room for one request in the rate window (the slot it took), or says how long
    /// until there is room.
    fn try_reserve(&self) -> std::result::Result<Instant, Duration>;
    /// Sends one batch in the room reserved at `slot`; the answer goes to `done`.
    fn send(&self, id: BatchId, body: Vec<u8>, slot: Instant, done: Done);
    /// Abandons every request in flight.
    fn cancel_all(&self);
}

/// Ends the run early (`why` says how): records in flight may have been applied, the others
/// were not sent.
fn stopped(planner: &mut Planner, why: &str) {
    planner.stop(
        || Error::Unanswered {
            why: why.to_owned(),
        },
        || Error::NotSent {
            why: why.to_owned(),
        },
    );
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
    let (done_tx, done_rx) = mpsc::channel::<(BatchId, Result<Reply>)>();
    let mut exhausted = false;
    let mut failure: Option<Error> = None;
    let mut last_check = Instant::now();
    loop {
        // Read as far ahead as the window can use.
        while failure.is_none() && !exhausted && planner.wants_input() {
            match source.read(100) {
                Ok(chunk) => {
                    exhausted = chunk.done;
                    for (index, input) in chunk.records {
                        planner.push(index, input);
                    }
                }
                Err(e) => {
                    sender.cancel_all();
                    stopped(planner, "the input failed");
                    let _ = sink.take(planner.take_outcomes());
                    return Err(e);
                }
            }
        }
        // Send what the window and the rate limit allow.
        let mut wait = SLICE;
        if failure.is_none() {
            loop {
                if planner.in_flight() >= planner.window() {
                    break;
                }
                // Reserve room only for a batch that is ready.
                let Some((id, body)) = planner.next_batch(exhausted) else {
                    break;
                };
                match sender.try_reserve() {
                    Ok(slot) => sender.send(id, body, slot, done_tx.clone()),
                    Err(pace) => {
                        wait = wait.min(pace);
                        planner.unsend(id);
                        break;
                    }
                }
            }
        }
        if let Err(e) = sink.take(planner.take_outcomes()) {
            sender.cancel_all();
            stopped(planner, "the run was stopped");
            let _ = sink.take(planner.take_outcomes());
            return Err(e);
        }
        if planner.in_flight() == 0 {
            if let Some(error) = failure {
                planner.fail_unsent(|| Error::NotSent {
                    why: format!("the run stopped before this record ({error})"),
                });
                sink.take(planner.take_outcomes())?;
                return Err(error);
            }
            if exhausted && planner.is_done() {
                return Ok(());
            }
        }
        // Wait for an answer, room in the window, or the next slice.
        let got = done_rx.recv_timeout(wait.max(Duration::from_millis(1)));
        if last_check.elapsed() >= SLICE || matches!(got, Err(RecvTimeoutError::Timeout)) {
            last_check = Instant::now();
            if let Err(e) = hooks.check() {
                sender.cancel_all();
                // Answers that came in before the interrupt still count.
                while let Ok((id, answer)) = done_rx.try_recv() {
                    planner.on_answer(id, answer);
                }
                if let Ok((id, answer)) = got {
                    planner.on_answer(id, answer);
                }
                stopped(planner, "the run was interrupted");
                let _ = sink.take(planner.take_outcomes());
                return Err(e);
            }
        }
        if let Ok((id, answer)) = got {
            let failed = planner.on_answer(id, answer);
            // Outcomes go out as soon as they are known, before more input is read.
            if let Err(e) = sink.take(planner.take_outcomes()) {
                sender.cancel_all();
                stopped(planner, "the run was stopped");
                let _ = sink.take(planner.take_outcomes());
                return Err(e);
            }
            if let Some(error) = failed {
                if hooks.enabled(Level::Warning) {
                    hooks.log(Level::Warning, &format!("the bulk run stops: {error}"));
                }
                failure.get_or_insert(error);
            }
        }
    }
}

#[cfg(test)]
mod tests;
