//! The HTTP client: one connection pool per client and process (`transport`), shared by every
//! thread that uses it, with pacing, retries, and waits that the caller can interrupt; the
//! single upsert of both faces, bulk runs, and the portal's property definitions.
//!
//! Requests run on a small tokio runtime of the client's own and the calling thread waits for
//! them in slices of [`SLICE`], asking [`Hooks::check`] between slices: that is how a Python
//! signal handler (Ctrl-C, a task timeout) gets to run while a request is in flight.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::Url;
use tokio::runtime::Handle;

use crate::api::{self, ApiVersion, BatchInput, Landed};
use crate::bulk;
use crate::email;
use crate::error::{ApiError, Error, Result};
use crate::pacing::{Limit, Pacer};
use crate::planner::{BatchId, Planner, Reply};
use crate::retry::{Decision, Failure, RetryPolicy};
use crate::transport::{read_ca_bundle, send, Answer, Lease, Settings, Transports};

mod definitions;

pub use definitions::DEFINITIONS_TTL;

/// How often a wait asks [`Hooks::check`] whether to stop.
pub const SLICE: Duration = Duration::from_millis(50);

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

/// What a [`Client`] is built from: every option of `HubSpot(...)` but the two that decide how
/// Python values are read (`missing`, `assume_utc`, in the binding's `ConvertOptions`).
#[derive(Clone)]
pub struct ClientConfig {
    pub token: String,
    pub base_url: String,
    /// Total time for one attempt, connecting included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// A limit to pace by when HubSpot's headers do not say (the tighter one wins).
    pub rate_limit: Option<Limit>,
    /// PEM file of extra trusted certificates (a company proxy's CA, say).
    pub ca_bundle: Option<PathBuf>,
    /// Where requests go; `None`: single upserts on v1, bulk runs and property definitions on
    /// the newest date version (the README's "HubSpot API versions").
    pub api_version: Option<ApiVersion>,
}

/// The `User-Agent` of every request.
pub const USER_AGENT_TEXT: &str = concat!("hubspot-upsert/", env!("CARGO_PKG_VERSION"));

pub struct Client {
    base_url: String,
    retry: RetryPolicy,
    pacer: Pacer,
    transports: Transports,
    definitions: Mutex<definitions::Definitions>,
    single_api: ApiVersion,
    bulk_api: ApiVersion,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Checks `base_url`: `https://`, or `http://` to a loopback host; no credentials, query or
/// fragment. Returns it without a trailing `/`, and whether its host is loopback.
pub fn check_base_url(base_url: &str) -> Result<(String, bool)> {
    // A query may hold a legacy API key (`?hapikey=`): it is never repeated in a message.
    let shown = base_url.split(['?', '#']).next().unwrap_or_default();
    let bad = |why: &str| {
        Err(Error::InvalidInput(format!(
            "invalid base_url '{shown}': {why}"
        )))
    };
    let url = match Url::parse(base_url) {
        Ok(url) => url,
        Err(e) => return bad(&e.to_string()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidInput(
            "invalid base_url: it must not contain credentials (the token is passed separately)"
                .into(),
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => return bad("it has no host"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return bad(
            "plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https",
        ),
        other => return bad(&format!("scheme '{other}' is not http(s)")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad("it must not have a query or fragment");
    }
    Ok((url.as_str().trim_end_matches('/').to_owned(), loopback))
}

/// A random number in `[0, 1)` for jitter.
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl Client {
    /// Checks the configuration. Builds no runtime or connection pool yet: that happens on
    /// first use, in the process that uses it.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let (base_url, loopback) = check_base_url(&config.base_url)?;
        let token = config.token.trim();
        if token.is_empty() {
            return Err(Error::InvalidInput(
                "no HubSpot access token: pass HubSpot(token) or set HUBSPOT_ACCESS_TOKEN \
                 (a private app token, pat-...)"
                    .into(),
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::InvalidInput(
                "the access token contains characters not allowed in an HTTP header \
                 (a line break or a control character?)"
                    .into(),
            )
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_TEXT));
        let ca_certs = match &config.ca_bundle {
            Some(path) => read_ca_bundle(path)?,
            None => Vec::new(),
        };
        Ok(Client {
            base_url,
            retry: config.retry,
            pacer: Pacer::new(config.rate_limit),
            transports: Transports::new(Settings {
                headers,
                timeout: config.timeout,
                connect_timeout: config.connect_timeout.min(config.timeout),
                loopback,
                ca_certs,
            }),
            definitions: Mutex::default(),
            single_api: config.api_version.clone().unwrap_or(ApiVersion::Legacy),
            bulk_api: config
                .api_version
                .unwrap_or_else(|| ApiVersion::Dated(api::NEWEST_DATED.to_owned())),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The limit this client paces itself by, if it knows one.
    pub fn known_rate_limit(&self) -> Option<Limit> {
        self.pacer.known_limit()
    }

    /// Stops this process's I/O thread unless a call is using it; see
    /// [`Transports::release_if_idle`]. Called before `fork()`.
    pub fn release_if_idle(&self) -> bool {
        self.transports.release_if_idle()
    }

    /// Runs `future` on the client's runtime, asking `hooks` between slices whether to stop.
    fn run<F: Future>(&self, handle: &Handle, future: F, hooks: &dyn Hooks) -> Result<F::Output> {
        handle.block_on(async move {
            let mut future = std::pin::pin!(future);
            loop {
                match tokio::time::timeout(SLICE, future.as_mut()).await {
                    Ok(output) => return Ok(output),
                    Err(_) => hooks.check()?,
                }
            }
        })
    }

    /// Sends one request until HubSpot answers 2xx, a failure is final, or the retry policy
    /// gives up; returns the 2xx answer. Waits for the rate window and between retries on the
    /// runtime's timer. `reserved`: the slot in the rate window reserved for the first attempt.
    async fn request<L: Log + ?Sized>(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        log: &L,
        mut reserved: Option<Instant>,
    ) -> Result<Answer> {
        // What logs show of the URL: the path, never the host's query or anything else.
        let path_for_logs = url.get(self.base_url.len()..).unwrap_or(url);
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            let slot = match reserved.take() {
                Some(slot) => slot,
                None => {
                    let (pace, slot) = self.pacer.reserve(Instant::now());
                    if !pace.is_zero() {
                        if log.enabled(Level::Debug) {
                            log.log(
                                Level::Debug,
                                &format!(
                                    "pacing: waiting {:.3} s for room in the rate window",
                                    pace.as_secs_f64()
                                ),
                            );
                        }
                        tokio::time::sleep(pace).await;
                    }
                    slot
                }
            };
            attempts += 1;
            let sent = Instant::now();
            let result = send(http, method.clone(), url, body.clone()).await;
            let arrived = self.pacer.settle(slot, sent, Instant::now());
            let took_ms = sent.elapsed().as_secs_f64() * 1000.0;
            let (error, status, retry_after, transient) = match result {
                Ok(answer) => {
                    self.pacer.observe(arrived, Instant::now(), answer.rate);
                    if log.enabled(Level::Debug) {
                        let status = answer.status;
                        log.log(
                            Level::Debug,
                            &format!("{method} {path_for_logs} -> {status} in {took_ms:.1} ms (attempt {attempts})"),
                        );
                    }
                    if (200..300).contains(&answer.status) {
                        self.pacer.succeeded();
                        return Ok(answer);
                    }
                    if answer.status == 429 {
                        self.pacer.throttled(Instant::now());
                    }
                    let error =
                        ApiError::from_response(answer.status, answer.correlation_id, &answer.body);
                    (
                        Error::from(error),
                        Some(answer.status),
                        answer.retry_after,
                        false,
                    )
                }
                Err((error, transient)) => {
                    if log.enabled(Level::Debug) {
                        log.log(
                            Level::Debug,
                            &format!("{method} {path_for_logs} failed after {took_ms:.1} ms (attempt {attempts}): {error}"),
                        );
                    }
                    (error, None, None, transient)
                }
            };
            let policy = match &error {
                Error::Api(api) => api.policy.clone(),
                _ => None,
            };
            let failure = match status {
                Some(status) => Failure::Status {
                    status,
                    retry_after,
                    policy: policy.as_deref(),
                },
                None => Failure::Transport { transient },
            };
            let window = self.pacer.until_room(Instant::now());
            match self
                .retry
                .decide(failure, attempts, started.elapsed(), window, jitter())
            {
                Decision::RetryAfter(wait) => {
                    let (level, what) = match status {
                        Some(429) => (
                            Level::Warning,
                            "HubSpot's rate limit was reached".to_owned(),
                        ),
                        Some(status) => (Level::Info, format!("HubSpot answered {status}")),
                        None => (Level::Info, "the request failed".to_owned()),
                    };
                    if log.enabled(level) {
                        log.log(
                            level,
                            &format!(
                                "{what} ({}); waiting {:.2} s before attempt {} of at most {}",
                                error_brief(&error),
                                wait.as_secs_f64(),
                                attempts + 1,
                                self.retry.max_retries + 1
                            ),
                        );
                    }
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp(why) => {
                    // Say why no retry was made where the error alone does not tell.
                    let retryable = failure.retryable() || status == Some(429);
                    return Err(with_attempts(error, attempts, why, retryable));
                }
            }
        }
    }

    /// [`Client::request`] on the calling thread, asking `hooks` every slice whether to stop.
    fn request_blocking(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        hooks: &dyn Hooks,
    ) -> Result<Answer> {
        let lease = self.transports.lease()?;
        self.run(
            &lease.handle,
            self.request(&lease.http, method, url, body, hooks, None),
            hooks,
        )?
    }

    /// The outcome of a batch upsert of one input: its result, or the error a 207 gave it.
    fn batch_of_one(&self, answer: Answer) -> Result<(Option<Landed>, Answer)> {
        let outcome = api::parse_v3_batch(&answer.body)
            .and_then(|results| results.into_iter().next())
            .map(|r| Landed {
                vid: r.vid,
                is_new: r.is_new,
            });
        if outcome.is_none() && answer.status == 207 {
            let mut e = ApiError::from_response(400, answer.correlation_id.clone(), &answer.body);
            e.status = 207;
            return Err(e.into());
        }
        Ok((outcome, answer))
    }

    /// A 404 from a date-versioned path: HubSpot does not know the version. Says so, naming
    /// the setting.
    fn explain_404(&self, version: &ApiVersion, error: Error) -> Error {
        match error {
            Error::Api(mut e) if e.status == 404 && *version != ApiVersion::Legacy => {
                e.summary = format!(
                    "HubSpot does not serve API version '{}' here (404): set api_version to a \
                     version HubSpot publishes ('{}', '{}', ...) or to 'legacy'",
                    version.name(),
                    api::OLDEST_DATED,
                    api::NEWEST_DATED
                );
                Error::Api(e)
            }
            other => other,
        }
    }

    /// Says once per process, at INFO, which paths clients of this configuration call.
    fn log_paths<L: Log + ?Sized>(&self, hooks: &L) {
        static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let line = format!(
            "HubSpot API paths: single upserts POST {}, bulk POST {} and GET {}",
            self.single_api.single_upsert_path(),
            self.bulk_api.batch_upsert_path(),
            self.bulk_api.properties_path()
        );
        let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
        if !said.contains(&line) {
            if hooks.enabled(Level::Info) {
                hooks.log(Level::Info, &line);
            }
            said.push(line);
        }
    }

    /// Creates or updates the contact with this email, setting `properties` (already HubSpot
    /// text), on the calling thread; `hooks` may stop it between slices.
    pub fn create_or_update(
        &self,
        email: &str,
        properties: &[(String, String)],
        hooks: &dyn Hooks,
    ) -> Result<Landed> {
        email::validate(email)?;
        let lease = self.transports.lease()?;
        self.run(
            &lease.handle,
            self.create_or_update_on(&lease.http, email, properties, hooks),
            hooks,
        )?
    }

    /// The same upsert as a task on the client's runtime, for callers that do not wait on a
    /// thread (an asyncio event loop): `done` gets the outcome on the runtime's thread.
    /// Aborting the returned handle drops the request in flight.
    pub fn spawn_create_or_update(
        self: &Arc<Self>,
        email: String,
        properties: Vec<(String, String)>,
        log: Arc<dyn Log>,
        done: impl FnOnce(Result<Landed>) + Send + 'static,
    ) -> Result<tokio::task::AbortHandle> {
        email::validate(&email)?;
        let lease = self.transports.lease()?;
        let client = self.clone();
        let handle = lease.handle.clone();
        let task = handle.spawn(async move {
            let http = lease.http.clone();
            let outcome = client
                .create_or_update_on(&http, &email, &properties, &*log)
                .await;
            drop(lease);
            done(outcome);
        });
        Ok(task.abort_handle())
    }

    /// The one upsert path of both faces: v1, or a batch of one on a date version.
    async fn create_or_update_on<L: Log + ?Sized>(
        &self,
        http: &reqwest::Client,
        email: &str,
        properties: &[(String, String)],
        log: &L,
    ) -> Result<Landed> {
        self.log_paths(log);
        let answer = match &self.single_api {
            ApiVersion::Legacy => {
                let url = api::v1_upsert_url(&self.base_url, email);
                let body = Some(api::v1_upsert_body(properties));
                self.request(http, reqwest::Method::POST, &url, body, log, None)
                    .await
                    .map(|answer| (api::parse_v1_upsert(&answer.body), answer))
            }
            dated => {
                // No date-versioned single upsert exists: a batch of one, same outcome.
                let url = api::batch_upsert_url(&self.base_url, dated);
                let input = BatchInput {
                    email: email.to_owned(),
                    properties: properties.to_vec(),
                };
                let body = Some(api::v3_batch_upsert_body([("0", &input)]));
                self.request(http, reqwest::Method::POST, &url, body, log, None)
                    .await
                    .map_err(|e| self.explain_404(dated, e))
                    .and_then(|answer| self.batch_of_one(answer))
            }
        };
        match answer {
            Ok((outcome, answer)) => outcome.ok_or_else(|| {
                let mut e =
                    ApiError::from_response(answer.status, answer.correlation_id, &answer.body);
                e.summary = format!(
                    "HubSpot's answer to the upsert was not understood: {}",
                    e.summary
                );
                Error::from(e)
            }),
            Err(Error::Api(mut e)) => {
                if e.conflicting_email.is_none() && e.status == 409 {
                    e.conflicting_email = properties
                        .iter()
                        .find(|(name, _)| name == "email")
                        .map(|(_, value)| value.clone());
                }
                Err(Error::Api(e))
            }
            Err(other) => Err(other),
        }
    }
}

impl Client {
    /// Upserts every record `source` gives, with v3 batch requests; see [`crate::bulk`].
    /// `cap` is the most batches in flight.
    pub fn create_or_update_many(
        self: &Arc<Self>,
        source: &mut dyn bulk::Source,
        sink: &mut dyn bulk::Sink,
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
        cap: usize,
    ) -> Result<()> {
        self.log_paths(hooks);
        // The first records are read before anything is sent: an input that fails at once (a
        // missing column, say) or holds no record costs no request.
        let first = source.read(api::V3_BATCH_MAX)?;
        let schema = if first.records.is_empty() && first.done {
            Ok(None)
        } else {
            self.property_definitions(hooks)
        };
        let schema = match schema {
            Ok(schema) => schema,
            Err(error) => {
                // Nothing was sent: the records read so far say so.
                let mut planner = Planner::new(None, cap);
                for (index, input) in first.records {
                    planner.push(index, input);
                }
                planner.fail_unsent(|| Error::NotSent {
                    why: format!("the run stopped before this record ({error})"),
                });
                sink.take(planner.take_outcomes())?;
                return Err(error);
            }
        };
        let mut planner = Planner::new(schema, cap);
        let mut source = bulk::Prefetched::new(first, source);
        let source = &mut source;
        let sender = BatchSender {
            client: self.clone(),
            lease: self.transports.lease()?,
            url: api::batch_upsert_url(&self.base_url, &self.bulk_api),
            log,
            tasks: Mutex::default(),
        };
        let result = bulk::run(&mut planner, source, &sender, sink, hooks);
        if planner.contradicts_definitions() {
            self.forget_definitions();
        }
        if planner.unmatched_results > 0 && hooks.enabled(Level::Warning) {
            hooks.log(
                Level::Warning,
                &format!(
                    "{} batch results named no record of their batch and were ignored",
                    planner.unmatched_results
                ),
            );
        }
        result
    }
}

/// The batch requests of one bulk run, as tasks on the client's runtime.
struct BatchSender {
    client: Arc<Client>,
    lease: Lease,
    url: String,
    log: Arc<dyn Log>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl bulk::Sender for BatchSender {
    fn try_reserve(&self) -> std::result::Result<Instant, Duration> {
        self.client.pacer.try_reserve(Instant::now())
    }

    fn send(&self, id: BatchId, body: Vec<u8>, slot: Instant, done: bulk::Done) {
        let (client, http, url, log) = (
            self.client.clone(),
            self.lease.http.clone(),
            self.url.clone(),
            self.log.clone(),
        );
        let task = self.lease.handle.spawn(async move {
            let answer = client
                .request(
                    &http,
                    reqwest::Method::POST,
                    &url,
                    Some(body),
                    &*log,
                    Some(slot),
                )
                .await
                .map_err(|e| client.explain_404(&client.bulk_api, e))
                .map(|a| Reply {
                    status: a.status,
                    correlation_id: a.correlation_id,
                    body: a.body,
                });
            let _ = done.send((id, answer));
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }

    fn cancel_all(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Drop for BatchSender {
    fn drop(&mut self) {
        bulk::Sender::cancel_all(self);
    }
}

/// A short description of an error for retry logs: status and correlation id, or the cause.
fn error_brief(error: &Error) -> String {
    match error {
        Error::Api(api) => format!(
            "HTTP {}, correlation id {}",
            api.status,
            api.correlation_id.as_deref().unwrap_or("none")
        ),
        other => other.to_string(),
    }
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
        Error::Transport {
            message, timeout, ..
        } => Error::Transport {
            message: message + &note,
            timeout,
            attempts,
        },
        other => other,
    }
}
