//! The per-process transport of a client: a small tokio runtime (the I/O thread) and the
//! connection pool that lives on it, built on first use, rebuilt in a forked child, released
//! before a fork; and one HTTP attempt on it, with its failures classified.
//!
//! Their threads do not survive `fork()`, so a child that used the parent's would wait forever:
//! the transport remembers the process that built it, builds a new one in any other process,
//! and deliberately leaks the inherited one, which must not be dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Certificate;
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};
use crate::pacing::RateHeaders;
use crate::retry::parse_retry_after;

/// At most this much of a response body is read; the rest is not waited for.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// An answer read from HubSpot.
pub(crate) struct Answer {
    pub status: u16,
    pub correlation_id: Option<String>,
    pub retry_after: Option<Duration>,
    pub rate: RateHeaders,
    pub body: Vec<u8>,
}

/// The per-process part: a runtime and the connection pool that lives on it.
struct Transport {
    pid: u32,
    runtime: Runtime,
    http: reqwest::Client,
    /// Calls using it now; [`Client::release_if_idle`] leaves a busy one alone.
    busy: Arc<AtomicUsize>,
}

/// The runtime handle and connection pool lent to one call; the transport counts as busy
/// until it is dropped.
pub(crate) struct Lease {
    pub handle: Handle,
    pub http: reqwest::Client,
    busy: Arc<AtomicUsize>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the connection pool is built.
pub(crate) struct Settings {
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The base URL's host is loopback: no proxy.
    pub loopback: bool,
    pub ca_certs: Vec<Certificate>,
}

/// A client's transport, per process.
pub(crate) struct Transports {
    settings: Settings,
    slot: Mutex<Option<Transport>>,
}

impl Transports {
    pub fn new(settings: Settings) -> Self {
        Transports {
            settings,
            slot: Mutex::new(None),
        }
    }

    /// This process's runtime handle and connection pool, built on first use and after a fork.
    pub fn lease(&self) -> Result<Lease> {
        let pid = std::process::id();
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lease = |t: &Transport| {
            t.busy.fetch_add(1, Ordering::AcqRel);
            Lease {
                handle: t.runtime.handle().clone(),
                http: t.http.clone(),
                busy: t.busy.clone(),
            }
        };
        if let Some(t) = slot.as_ref() {
            if t.pid == pid {
                return Ok(lease(t));
            }
        }
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hubspot-upsert-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Transport {
                message: format!("could not start the I/O thread: {e}"),
                timeout: false,
                attempts: 0,
            })?;
        let mut builder = reqwest::Client::builder()
            .default_headers(self.settings.headers.clone())
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true);
        if self.settings.loopback {
            builder = builder.no_proxy();
        }
        if !self.settings.ca_certs.is_empty() {
            builder = builder.tls_certs_merge(self.settings.ca_certs.iter().cloned());
        }
        let http = {
            let _entered = runtime.enter();
            builder
                .build()
                .map_err(|e| transport_error("could not set up the HTTP client", e).0)?
        };
        let transport = slot.insert(Transport {
            pid,
            runtime,
            http,
            busy: Arc::default(),
        });
        Ok(lease(transport))
    }

    /// Stops this process's I/O thread and closes its connections, unless a call is using
    /// them; the next call builds them again. Called before `fork()`, so that the process forks
    /// without the client's threads (a fork with threads running is unsafe, and Python 3.12+
    /// warns of it). Returns whether there is no I/O thread left.
    pub fn release_if_idle(&self) -> bool {
        let taken = {
            let mut slot = self
                .slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match slot.as_ref() {
                Some(t) if t.pid == std::process::id() && t.busy.load(Ordering::Acquire) != 0 => {
                    return false
                }
                _ => slot.take(),
            }
        };
        match taken {
            Some(t) if t.pid == std::process::id() => {
                // Joins the runtime's threads, so that none is left when fork() copies the process.
                t.runtime.shutdown_timeout(Duration::from_secs(1));
            }
            Some(inherited) => std::mem::forget(inherited),
            None => {}
        }
        true
    }
}

impl Drop for Transports {
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(transport) = slot.take() {
            if transport.pid == std::process::id() {
                transport.runtime.shutdown_background();
            } else {
                // Inherited through fork(): its threads are gone, dropping it would hang or panic.
                std::mem::forget(transport);
            }
        }
    }
}

pub(crate) fn read_ca_bundle(path: &PathBuf) -> Result<Vec<Certificate>> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| Error::InvalidInput(format!("ca_bundle '{shown}' cannot be read: {e}")))?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::InvalidInput(format!(
            "ca_bundle '{shown}' is not a PEM bundle: {}",
            cause_chain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::InvalidInput(format!(
            "ca_bundle '{shown}' holds no PEM certificate"
        )));
    }
    Ok(certs)
}

fn header_u32(headers: &HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// One attempt: sends the request and reads the answer (at most [`MAX_BODY_BYTES`] of it).
/// A failure comes with whether it is transient.
pub(crate) async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<Answer, (Error, bool)> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error("the request to HubSpot failed", e))?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let correlation_id = headers
        .get("x-hubspot-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let rate = RateHeaders {
        max: header_u32(headers, "x-hubspot-ratelimit-max"),
        remaining: header_u32(headers, "x-hubspot-ratelimit-remaining"),
        interval: header_u32(headers, "x-hubspot-ratelimit-interval-milliseconds")
            .map(|ms| Duration::from_millis(ms.into())),
        secondly: header_u32(headers, "x-hubspot-ratelimit-secondly"),
    };
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error("reading HubSpot's answer failed", e))?
    {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(Answer {
        status,
        correlation_id,
        retry_after,
        rate,
        body,
    })
}

/// The messages of an error and all its causes, without repeats. reqwest's own `Display` shows
/// neither the cause (a certificate problem, a refused connection) nor is it free of the URL,
/// whose path holds the contact's email.
pub(crate) fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
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

/// A reqwest failure as a transport error, and whether retrying can help. Certificate and
/// TLS-configuration failures cannot; refused or reset connections and timeouts can.
pub(crate) fn transport_error(what: &str, err: reqwest::Error) -> (Error, bool) {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let chain = cause_chain(&err);
    let lower = chain.to_ascii_lowercase();
    // A certificate problem, or TLS spoken to a server that does not (plain http on the port):
    // neither mends by waiting.
    let tls = [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
    ]
    .iter()
    .any(|word| lower.contains(word));
    let transient = !err.is_builder()
        && !tls
        && (timeout || err.is_connect() || err.is_request() || err.is_body());
    let what = if timeout {
        "the request to HubSpot timed out"
    } else {
        what
    };
    let message = format!("{what}: {chain}");
    (
        Error::Transport {
            message,
            timeout,
            attempts: 1,
        },
        transient,
    )
}
