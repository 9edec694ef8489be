//! The one error type of the core, and how HubSpot's error responses are read into it.
//!
//! ```text
//! Error
//!  ├── InvalidInput   bad arguments, found before anything is sent     (Python: ValueError)
//!  ├── Api            HubSpot answered with an error status            (Python: HubSpotError tree)
//!  ├── Refused        one record HubSpot refuses or would refuse, for  (Python: ValidationError)
//!  │                  a cause an answer named or the portal's property
//!  │                  definitions show
//!  ├── Transport      no usable answer, of a FailureKind: connect,     (Python: TransportError,
//!  │                  timeout, reset, body cut, TLS, oversize, config  RequestTimeoutError)
//!  ├── RateWait       the rate window has no room before the deadline  (Python: RateLimitError)
//!  ├── NotSent        a record the run stopped before sending          (Python: TransportError)
//!  ├── Unanswered     a record in flight when the run stopped          (Python: TransportError)
//!  ├── Caller         the caller's own code stopped the call, and what (Python: that very
//!  │                  it raised, carried untouched: a signal handler   exception, unchanged)
//!  │                  during a wait (Stop::Signal: at once), or the
//!  │                  input, a progress callback, the sync state's
//!  │                  store (Stop::Code: once the answers of batches
//!  │                  in flight are in)
//!  └── Internal       a bug: a panic caught at the boundary            (Python: HubSpotError)
//! ```
//!
//! Every field of HubSpot's error bodies is optional: they vary between APIs and over time.
//! Messages name what happened in plain words and carry the correlation id; they never contain
//! the token, and never the request URL (it holds the contact's email).

use serde_json::Value as Json;

mod response;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{}", .0.message())]
    Api(Box<ApiError>),
    #[error("{message}")]
    Transport {
        message: String,
        kind: FailureKind,
        attempts: u32,
    },
    /// The rate window had no room before the call's deadline; `attempts` were made first.
    #[error("{message}")]
    RateWait { message: String, attempts: u32 },
    #[error("{message}")]
    Refused {
        message: String,
        /// The status of the answer that named the cause; None when the property definitions
        /// showed it before sending.
        status: Option<u16>,
        correlation_id: Option<String>,
        field: Box<FieldError>,
        /// The record's other values the property definitions refuse (HubSpot's answers name
        /// one cause at a time: empty for those).
        also: Vec<FieldError>,
    },
    /// Never sent: the run stopped first (`why` says how).
    #[error("not sent: {why}")]
    NotSent { why: String },
    /// Sent, but the run stopped (`why` says how) before HubSpot answered: it may or may not
    /// have been applied.
    #[error(
        "interrupted before HubSpot answered ({why}); the batch may or may not have been applied"
    )]
    Unanswered { why: String },
    /// The caller's own code stopped the call (`stop` says how); `raised` is what it raised,
    /// which the core carries and never looks inside.
    #[error("{stop}")]
    Caller { stop: Stop, raised: Raised },
    #[error("internal error in hubspot_upsert ({0}); please report it")]
    Internal(String),
}

/// How the caller's own code stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A signal handler raised while a wait asked the hooks: the call ends at once.
    Signal,
    /// The caller's code raised (the input, a progress callback, the sync state's store): a
    /// bulk run sends nothing more and waits (bounded by the request timeout) for the answers of
    /// batches already sent, so that their outcomes are known.
    Code,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Signal => "interrupted",
            Stop::Code => "stopped by the caller's code",
        })
    }
}

/// What the caller's own code raised (a Python exception, for the binding), carried through
/// the core untouched: whoever made it takes it back out with [`Raised::get`].
#[derive(Clone)]
pub struct Raised(std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl Raised {
    pub fn new<E: std::any::Any + Send + Sync>(raised: E) -> Self {
        Raised(std::sync::Arc::new(raised))
    }

    /// What was raised, if it is an `E`.
    pub fn get<E: std::any::Any>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Raised(..)")
    }
}

/// What kept an attempt from a usable answer, decided from the failure's type (never from
/// its text). The retry policy retries the transient kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection: refused, unreachable, DNS.
    Connect,
    /// The attempt took longer than the timeout.
    Timeout,
    /// The connection failed while the request was sent.
    Reset,
    /// The answer was cut partway through its body, or could not be decoded.
    Body,
    /// TLS refused: a certificate, or TLS spoken to a server that does not.
    Tls,
    /// The answer is longer than the client reads: it may have been applied.
    Oversize,
    /// The client's own set-up (the I/O thread, a proxy URL, the request itself).
    Config,
}

impl FailureKind {
    /// Whether retrying the same request can mend it: the upsert is idempotent.
    pub(crate) fn transient(self) -> bool {
        matches!(
            self,
            FailureKind::Connect | FailureKind::Timeout | FailureKind::Reset | FailureKind::Body
        )
    }
}

/// Which public exception an error status becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    Validation,
    Authentication,
    PermissionDenied,
    NotFound,
    Conflict,
    RateLimit,
    Server,
}

/// One rejected property value: `validationResults[]` of v1, `errors[]` of v3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldError {
    pub name: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// An error answer from HubSpot, with what could be read from its body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub status: u16,
    /// What happened, in plain words; [`ApiError::message`] adds status and correlation id.
    pub(crate) summary: String,
    /// How many attempts were made before this answer was final.
    pub attempts: u32,
    pub category: Option<String>,
    pub correlation_id: Option<String>,
    /// The parsed JSON body, when it was JSON.
    pub body: Option<Json>,
    /// 409: the id of the contact that already owns the address.
    pub existing_vid: Option<i64>,
    /// 409: the address in conflict, when HubSpot names it.
    pub conflicting_email: Option<String>,
    /// 400: the rejected values.
    pub errors: Vec<FieldError>,
    /// 403: the scopes the token lacks.
    pub required_scopes: Vec<String>,
    /// 429: `TEN_SECONDLY_ROLLING`, `DAILY`, `SECONDLY`...
    pub policy: Option<String>,
}

impl ApiError {
    /// The full message: what happened, then status, category and correlation id.
    pub fn message(&self) -> String {
        let mut tail = vec![format!("HTTP {}", self.status)];
        if let Some(c) = &self.category {
            tail.push(c.clone());
        }
        tail.push(format!(
            "correlation id {}",
            self.correlation_id.as_deref().unwrap_or("none")
        ));
        format!("{} [{}]", self.summary, tail.join(", "))
    }
}

impl Error {
    /// What a log line above DEBUG may say of an error: the status, category and correlation
    /// id of an answer, never text quoted from it (which may hold addresses).
    pub(crate) fn brief(&self) -> String {
        match self {
            Error::Api(api) => {
                let category = api
                    .category
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                format!(
                    "HTTP {}{category}, correlation id {}",
                    api.status,
                    api.correlation_id.as_deref().unwrap_or("none")
                )
            }
            Error::Refused {
                status,
                correlation_id,
                field,
                ..
            } => format!(
                "{} refused{}, correlation id {}",
                field.code.as_deref().unwrap_or("a value"),
                status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                correlation_id.as_deref().unwrap_or("none")
            ),
            other => other.to_string(),
        }
    }
}

impl Error {
    /// A stop by the caller's code: `raised` is what it raised.
    pub fn caller(stop: Stop, raised: Raised) -> Error {
        Error::Caller { stop, raised }
    }

    /// How the caller's code stopped the call, if it did.
    pub fn stop(&self) -> Option<Stop> {
        match self {
            Error::Caller { stop, .. } => Some(*stop),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

#[cfg(test)]
mod tests;
