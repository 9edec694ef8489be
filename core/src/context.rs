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

/// Where the core's log records go.
pub trait Log: Send + Sync {
    fn enabled(&self, level: Level) -> bool;
    fn log(&self, level: Level, message: &str);
}

/// What the caller lends a call: a logger, and a way to stop waits.
pub trait Hooks: Log {
    /// Called between slices of every wait; an error ends the call with that error.
    fn check(&self) -> Result<()>;
}
