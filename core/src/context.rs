//! What a caller lends a call: a logger ([`Log`]), a way to stop waits ([`Hooks::check`]), and
//! the slice a wait lasts between two checks. A leaf: the client, the bulk driver and the
//! binding all use it, and it uses none of them.

use std::time::Duration;

use crate::error::Result;

/// How often a wait asks [`Hooks::check`] whether to stop.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Log levels of [`Hooks::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
}

/// Where the core's log records go, and what observes requests (OpenTelemetry, in Python).
pub trait Log: Send + Sync {
    fn enabled(&self, level: Level) -> bool;
    fn log(&self, level: Level, message: &str);

    /// A record with structured fields beside its message (Python's `extra=`); by default
    /// the message alone.
    fn log_with(&self, level: Level, message: &str, _fields: &[(&str, Field<'_>)]) {
        self.log(level, message)
    }

    /// Whether [`Log::request`] is to be called: something observes each request.
    fn observes(&self) -> bool {
        false
    }

    /// A request ended: a 2xx answer, or a failure the retries did not mend.
    fn request(&self, _done: &RequestDone<'_>) {}
}

/// A structured field's value.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
}

/// One request as it ended, every attempt included.
#[derive(Debug)]
pub struct RequestDone<'a> {
    pub method: &'a str,
    /// The path under the base URL, as logs show it.
    pub path: &'a str,
    /// The last answer's status (None: no answer, a transport failure).
    pub status: Option<u16>,
    /// HubSpot's correlation id of the last answer.
    pub correlation_id: Option<&'a str>,
    pub attempts: u32,
    /// How many of the answers were 429s.
    pub throttled: u32,
    /// When the request began (its first wait for room included), and how long it took.
    pub started: std::time::SystemTime,
    pub took: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What the caller lends a call: a logger, and a way to stop waits.
pub trait Hooks: Log {
    /// Called between slices of every wait; an error ends the call with that error.
    fn check(&self) -> Result<()>;
}
