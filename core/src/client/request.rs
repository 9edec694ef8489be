//! One request to HubSpot: paced by the rate window, retried by the policy, logged.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::{Client, Level, Log};
use crate::context::{Field, RequestDone};
use crate::error::{ApiError, Error, FailureKind, Result};
use crate::pacing::Weight;
use crate::retry::{Decision, Failure, Room};
use crate::transport::{Answer, Credential, Exchange};

impl Client {
    /// Sends one request until HubSpot answers 2xx, a failure is final, or the retry policy
    /// gives up; returns the 2xx answer. Waits for the rate window and between retries on the
    /// runtime's timer. `reserved`: the slot in the rate window reserved for the first attempt.
    pub(super) async fn request<L: Log + ?Sized>(
        &self,
        http: &dyn Exchange,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        log: &L,
        reserved: Option<Instant>,
    ) -> Result<Answer> {
        let call = Call {
            http,
            method,
            url,
            // What logs show of the URL: the path, never the host's query or anything else.
            path: url.get(self.base_url.len()..).unwrap_or(url),
            body,
            form: None,
        };
        self.perform(call, log, reserved).await
    }

    /// A form `POST` that carries credentials (`secrets`) instead of the access token: OAuth's
    /// token endpoint.
    pub(super) async fn request_form<L: Log + ?Sized>(
        &self,
        http: &dyn Exchange,
        url: &str,
        body: Vec<u8>,
        secrets: &[&str],
        log: &L,
    ) -> Result<Answer> {
        let call = Call {
            http,
            method: reqwest::Method::POST,
            url,
            path: url.get(self.base_url.len()..).unwrap_or(url),
            body: Some(body),
            form: Some(secrets),
        };
        self.perform(call, log, None).await
    }

    /// [`Client::attempts`], told to the observer of `log` when there is one.
    async fn perform<L: Log + ?Sized>(
        &self,
        call: Call<'_>,
        log: &L,
        reserved: Option<Instant>,
    ) -> Result<Answer> {
        let mut tally = Tally::default();
        if !log.observes() {
            return self.attempts(&call, log, reserved, &mut tally).await;
        }
        let (started, clock) = (std::time::SystemTime::now(), Instant::now());
        let outcome = self.attempts(&call, log, reserved, &mut tally).await;
        let (status, correlation_id) = match &outcome {
            Ok(answer) => (Some(answer.status), answer.correlation_id.as_deref()),
            Err(Error::Api(e)) => (Some(e.status), e.correlation_id.as_deref()),
            Err(_) => (None, None),
        };
        let error = outcome.as_ref().err().map(Error::brief);
        log.request(&RequestDone {
            method: call.method.as_str(),
            path: call.path,
            status,
            correlation_id,
            attempts: tally.attempts,
            throttled: tally.throttled,
            started,
            took: clock.elapsed(),
            error,
        });
        outcome
    }

    async fn attempts<L: Log + ?Sized>(
        &self,
        call: &Call<'_>,
        log: &L,
        mut reserved: Option<Instant>,
        tally: &mut Tally,
    ) -> Result<Answer> {
        let started = Instant::now();
        let mut attempts: u32 = 0;
        let mut renewed = false;
        loop {
            let slot = match reserved.take() {
                Some(slot) => slot,
                None => self.room_in_window(log, started, attempts).await?,
            };
            attempts += 1;
            tally.attempts = attempts;
            let failed = match self.attempt(call, slot, attempts, log).await {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            if failed.status == Some(429) {
                tally.throttled += 1;
            }
            // The caller stopped the wait (a signal handler raised): nothing more is tried.
            if matches!(failed.error, Error::Caller { .. }) {
                return Err(failed.error);
            }
            // An OAuth token HubSpot no longer takes: refreshed once, and sent again.
            if let (Some(401), Some(generation), false) =
                (failed.status, failed.generation, renewed)
            {
                if self.retire_token(generation) {
                    renewed = true;
                    if log.enabled(Level::Info) {
                        let line = format!(
                            "HubSpot answered 401 to the OAuth access token ({}); refreshing it",
                            failed.error.brief()
                        );
                        log.log(Level::Info, &line);
                    }
                    continue;
                }
            }
            let policy = match &failed.error {
                Error::Api(api) => api.policy.clone(),
                _ => None,
            };
            let failure = match failed.status {
                Some(status) => Failure::Status {
                    status,
                    retry_after: failed.retry_after,
                    policy: policy.as_deref(),
                },
                None => Failure::Transport { kind: failed.kind },
            };
            let room = Room {
                wait: self.pacer.until_room(Instant::now()),
                window: self.pacer.window(),
            };
            match self
                .retry
                .decide(failure, attempts, started.elapsed(), room, jitter())
            {
                Decision::RetryAfter(wait) => {
                    self.log_retry(log, &failed, wait, attempts);
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp(why) => {
                    // Say why no retry was made where the error alone does not tell.
                    let retryable = failure.retryable() || failed.status == Some(429);
                    return Err(with_attempts(failed.error, attempts, why, retryable));
                }
            }
        }
    }

    /// Waits until the rate window has room; returns the slot taken. A wait that would end
    /// past the deadline of the call begun at `started` fails at once, taking no slot
    /// (`attempts`: how many were made before).
    async fn room_in_window<L: Log + ?Sized>(
        &self,
        log: &L,
        started: Instant,
        attempts: u32,
    ) -> Result<Instant> {
        let (pace, slot) = self.pacer.reserve(Instant::now());
        if started.elapsed() + pace > self.retry.deadline {
            self.pacer.cancel(slot);
            return Err(self.past_deadline(pace, attempts));
        }
        if !pace.is_zero() {
            if log.enabled(Level::Debug) {
                let seconds = pace.as_secs_f64();
                let line = format!("pacing: waiting {seconds:.3} s for room in the rate window");
                log.log(Level::Debug, &line);
            }
            tokio::time::sleep(pace).await;
        }
        Ok(slot)
    }

    /// The failure of a call whose wait for room in the rate window (`pace`) would end past
    /// its deadline, after `attempts` attempts.
    pub(super) fn past_deadline(&self, pace: Duration, attempts: u32) -> Error {
        let limit = self
            .pacer
            .known_limit()
            .map(|l| format!(" ({} requests per {:.1} s)", l.max, l.window.as_secs_f64()))
            .unwrap_or_default();
        let sent = match attempts {
            0 => "; nothing was sent".to_owned(),
            n => format!(" (after {n} attempts)"),
        };
        Error::RateWait {
            message: format!(
                "the rate limit{limit} has no room for {:.1} s, which would end past the \
                 deadline ({:.1} s){sent}",
                pace.as_secs_f64(),
                self.retry.deadline.as_secs_f64()
            ),
            attempts,
        }
    }

    /// One attempt in the room reserved at `slot`: the 2xx answer, or what failed. Tells the
    /// pacer what the answer showed of the rate limit.
    async fn attempt<L: Log + ?Sized>(
        &self,
        call: &Call<'_>,
        slot: Instant,
        attempts: u32,
        log: &L,
    ) -> std::result::Result<Answer, Failed> {
        let Call { method, path, .. } = call;
        let lent = match call.form {
            Some(_) => None,
            None => match self.access_token(call.http, log).await {
                Ok(lent) => Some(lent),
                Err(error) => {
                    return Err(Failed {
                        error,
                        status: None,
                        retry_after: None,
                        kind: FailureKind::Config,
                        generation: None,
                    })
                }
            },
        };
        let credential = match (&lent, call.form) {
            (Some(lent), _) => Credential::Bearer(&lent.token),
            (None, Some(secrets)) => Credential::Form(secrets),
            (None, None) => Credential::Form(&[]),
        };
        let generation = lent.as_ref().map(|l| l.generation);
        let sent = Instant::now();
        let body = call.body.clone();
        let result = call
            .http
            .exchange(method.clone(), call.url, body, credential)
            .await;
        // Reads of definitions and details, and the token endpoint's grants, are light.
        let weight = if *method == reqwest::Method::GET || call.form.is_some() {
            Weight::Light
        } else {
            Weight::Write
        };
        let arrived = self.pacer.settle(slot, sent, Instant::now(), weight);
        let took_ms = sent.elapsed().as_secs_f64() * 1000.0;
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => {
                let kind = match &error {
                    Error::Transport { kind, .. } => *kind,
                    _ => FailureKind::Config,
                };
                if log.enabled(Level::Debug) {
                    let line = format!(
                        "{method} {path} failed after {took_ms:.1} ms (attempt {attempts}): {error}"
                    );
                    log.log(Level::Debug, &line);
                }
                let (status, retry_after) = (None, None);
                return Err(Failed {
                    error,
                    status,
                    retry_after,
                    kind,
                    generation,
                });
            }
        };
        self.pacer.observe(arrived, Instant::now(), answer.rate);
        let status = answer.status;
        if log.enabled(Level::Debug) {
            let line =
                format!("{method} {path} -> {status} in {took_ms:.1} ms (attempt {attempts})");
            let fields = [
                ("hubspot_method", Field::Text(method.as_str())),
                ("hubspot_path", Field::Text(path)),
                ("hubspot_status", Field::Int(i64::from(status))),
                ("hubspot_ms", Field::Float(took_ms)),
                ("hubspot_attempt", Field::Int(i64::from(attempts))),
                (
                    "hubspot_correlation_id",
                    Field::Text(answer.correlation_id.as_deref().unwrap_or("")),
                ),
            ];
            log.log_with(Level::Debug, &line, &fields);
        }
        if (200..300).contains(&status) {
            self.pacer.succeeded();
            return Ok(answer);
        }
        if status == 429 {
            self.pacer.throttled(Instant::now());
        }
        Err(Failed {
            error: ApiError::from_response(status, answer.correlation_id, &answer.body).into(),
            status: Some(status),
            retry_after: answer.retry_after,
            kind: FailureKind::Config,
            generation,
        })
    }

    fn log_retry<L: Log + ?Sized>(&self, log: &L, failed: &Failed, wait: Duration, attempts: u32) {
        let (level, what) = match failed.status {
            Some(429) => (
                Level::Warning,
                "HubSpot's rate limit was reached".to_owned(),
            ),
            Some(status) => (Level::Info, format!("HubSpot answered {status}")),
            None => (Level::Info, "the request failed".to_owned()),
        };
        if log.enabled(level) {
            // 429s are retried until the deadline, not max_retries times.
            let bound = if failed.status == Some(429) {
                format!(
                    "until the deadline ({:.0} s)",
                    self.retry.deadline.as_secs_f64()
                )
            } else {
                format!("of at most {}", self.retry.max_retries + 1)
            };
            let line = format!(
                "{what} ({}); waiting {:.2} s before attempt {} {bound}",
                failed.error.brief(),
                wait.as_secs_f64(),
                attempts + 1,
            );
            let correlation_id = match &failed.error {
                Error::Api(e) => e.correlation_id.as_deref(),
                _ => None,
            };
            let fields = [
                (
                    "hubspot_status",
                    Field::Int(failed.status.map_or(0, i64::from)),
                ),
                ("hubspot_wait_s", Field::Float(wait.as_secs_f64())),
                ("hubspot_attempt", Field::Int(i64::from(attempts + 1))),
                (
                    "hubspot_correlation_id",
                    Field::Text(correlation_id.unwrap_or("")),
                ),
            ];
            log.log_with(level, &line, &fields);
        }
    }
}

/// What the attempts of one request came to, for its observer.
#[derive(Default)]
struct Tally {
    attempts: u32,
    throttled: u32,
}

/// What one request is: the same for every attempt.
struct Call<'a> {
    http: &'a dyn Exchange,
    method: reqwest::Method,
    url: &'a str,
    path: &'a str,
    body: Option<Vec<u8>>,
    /// A form carrying these secrets, not the access token (OAuth's token endpoint).
    form: Option<&'a [&'a str]>,
}

/// An attempt that did not get a 2xx answer.
struct Failed {
    error: Error,
    status: Option<u16>,
    retry_after: Option<Duration>,
    /// What kind of transport failure it was (for an answer: not one).
    kind: FailureKind,
    /// Which OAuth access token the attempt carried.
    generation: Option<u64>,
}

/// A random number in `[0, 1)` for jitter.
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Records the attempts in the final error, and why no further one was made where that is
/// not plain from the error itself.
fn with_attempts(error: Error, attempts: u32, why: &str, retryable: bool) -> Error {
    let note = if attempts > 1 {
        format!(" (gave up after {attempts} attempts: {why})")
    } else if retryable {
        format!(" (not retried: {why})")
    } else {
        String::new()
    };
    match error {
        Error::Api(mut api) => {
            api.attempts = attempts;
            api.summary.push_str(&note);
            Error::Api(api)
        }
        Error::Transport { message, kind, .. } => Error::Transport {
            message: message + &note,
            kind,
            attempts,
        },
        other => other,
    }
}
