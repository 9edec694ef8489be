//! The HTTP client: one connection pool per client, shared by every thread that uses it.
//!
//! The reqwest client is built lazily and rebuilt in a forked child. reqwest's blocking client
//! drives its connections from a background thread that `fork()` does not copy: a child that
//! used the parent's client would wait for its timeout, and dropping that client panics. So the
//! client remembers the process that built it; in any other process a new one is built and the
//! inherited one is deliberately leaked, never dropped.

use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::Client as HttpClient;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::Url;

use crate::api::{self, UpsertOutcome};
use crate::email;
use crate::error::{ApiError, Error, Result};

/// At most this much of a response body is read; the rest is not waited for.
pub const MAX_BODY_BYTES: u64 = 1 << 20;

/// What a [`Client`] is built from.
#[derive(Clone)]
pub struct ClientConfig {
    pub token: String,
    pub base_url: String,
    /// Total time for one request, connecting included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

/// A status, the correlation id header and the (capped) body of one answer.
struct Answer {
    status: u16,
    correlation_id: Option<String>,
    body: Vec<u8>,
}

pub struct Client {
    base_url: String,
    loopback: bool,
    headers: HeaderMap,
    timeout: Duration,
    connect_timeout: Duration,
    http: Mutex<Option<(u32, HttpClient)>>,
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
    let bad = |why: &str| {
        Err(Error::InvalidInput(format!(
            "invalid base_url '{base_url}': {why}"
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

impl Client {
    /// Checks the configuration. Builds no connection pool yet: that happens on first use, in
    /// the process that uses it.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let (base_url, loopback) = check_base_url(&config.base_url)?;
        if config.token.is_empty() {
            return Err(Error::InvalidInput("the access token is empty".into()));
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.token)).map_err(|_| {
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
        let agent = HeaderValue::from_str(&config.user_agent).map_err(|_| {
            Error::InvalidInput(format!("invalid user agent {:?}", config.user_agent))
        })?;
        headers.insert(USER_AGENT, agent);
        if config.timeout.is_zero() {
            return Err(Error::InvalidInput(
                "timeout must be more than 0 seconds".into(),
            ));
        }
        Ok(Client {
            base_url,
            loopback,
            headers,
            timeout: config.timeout,
            connect_timeout: config.connect_timeout.min(config.timeout),
            http: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The connection pool of this process, built on first use and after a fork.
    fn http(&self) -> Result<HttpClient> {
        let pid = std::process::id();
        let mut slot = self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_in, client)) = slot.as_ref() {
            if *built_in == pid {
                return Ok(client.clone());
            }
        }
        if let Some((_, inherited)) = slot.take() {
            // Its worker thread did not survive the fork; dropping it would panic.
            std::mem::forget(inherited);
        }
        let mut builder = HttpClient::builder()
            .default_headers(self.headers.clone())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50));
        if self.loopback {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| transport_error("could not set up the HTTP client", e))?;
        *slot = Some((pid, client.clone()));
        Ok(client)
    }

    fn post(&self, url: &str, body: Vec<u8>) -> Result<Answer> {
        let response = self
            .http()?
            .post(url)
            .body(body)
            .send()
            .map_err(|e| transport_error("the request to HubSpot failed", e))?;
        let status = response.status().as_u16();
        let correlation_id = response
            .headers()
            .get("x-hubspot-correlation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        response
            .take(MAX_BODY_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| transport_error_io("reading HubSpot's answer failed", &e))?;
        Ok(Answer {
            status,
            correlation_id,
            body,
        })
    }

    /// Creates or updates the contact with this email, setting `properties` (already HubSpot text).
    pub fn upsert(&self, email: &str, properties: &[(String, String)]) -> Result<UpsertOutcome> {
        email::validate(email)?;
        let url = api::v1_upsert_url(&self.base_url, email);
        let answer = self.post(&url, api::v1_upsert_body(properties))?;
        if answer.status == 200 {
            return api::parse_v1_upsert(&answer.body).ok_or_else(|| {
                let mut e =
                    ApiError::from_response(answer.status, answer.correlation_id, &answer.body);
                e.message = format!(
                    "HubSpot's answer to the upsert was not understood: {}",
                    e.message
                );
                Error::from(e)
            });
        }
        let mut error = ApiError::from_response(answer.status, answer.correlation_id, &answer.body);
        if error.conflicting_email.is_none() {
            error.conflicting_email = properties
                .iter()
                .find(|(name, _)| name == "email")
                .map(|(_, value)| value.clone());
        }
        Err(error.into())
    }
}

/// The messages of an error and all its causes, without repeats. reqwest's own `Display` shows
/// neither the cause (a certificate problem, a refused connection) nor is it free of the URL,
/// whose path holds the contact's email.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn transport_error(what: &str, err: reqwest::Error) -> Error {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let what = if timeout {
        "the request to HubSpot timed out"
    } else {
        what
    };
    Error::Transport {
        message: format!("{what}: {}", cause_chain(&err)),
        timeout,
    }
}

fn transport_error_io(what: &str, err: &std::io::Error) -> Error {
    let timeout = err.kind() == std::io::ErrorKind::TimedOut
        || cause_chain(err).to_ascii_lowercase().contains("timed out");
    Error::Transport {
        message: format!("{what}: {}", cause_chain(err)),
        timeout,
    }
}
