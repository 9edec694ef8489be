//! The per-process transport of a client: a small tokio runtime (the I/O thread) and the
//! connection pool that lives on it, built on first use, rebuilt in a forked child, released
//! before a fork; beside them, the calling thread's connections (`direct`), which the sync
//! single upsert uses; and one HTTP attempt on either, with its failures classified.
//!
//! Their threads do not survive `fork()`, so a child that used the parent's would wait forever:
//! the transport remembers the process that built it, builds a new one in any other process,
//! and deliberately leaks the inherited one, which must not be dropped.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, FailureKind, Result};
use crate::pacing::RateHeaders;
use crate::retry::parse_retry_after;

mod direct;
pub(crate) use direct::Here;

/// An answer may be this long, and longer by [`ANSWER_PER_REQUEST_BYTE`] for each byte of its
/// request: a batch result echoes the properties written, which may be 100 records of many
/// 65,536-character values, JSON-escaped (a character of up to 3 UTF-8 bytes may come back as
/// a 6-byte `\uXXXX`). A 2xx answer longer than that is a failure; of an error answer only
/// [`ERROR_BODY_BYTES`] are read.
pub(crate) const ANSWER_BASE_BYTES: usize = 16 << 20;
pub(crate) const ANSWER_PER_REQUEST_BYTE: usize = 8;
pub(crate) const ERROR_BODY_BYTES: usize = 1 << 20;
/// An answer read from HubSpot.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) correlation_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) rate: RateHeaders,
    pub(crate) body: Vec<u8>,
}

/// How a request proves who sends it. Its secrets are cleared from the answer's text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// `Authorization: Bearer` with this access token; the body is JSON.
    Bearer(&'a str),
    /// A form body that carries the app's credentials (OAuth's token endpoint), which are
    /// these secrets.
    Form(&'a [&'a str]),
}

/// Where the attempts of a request go: the per-process reqwest pool ([`send`]) in production,
/// a script in the tests of `client`. The seam under every request: pacing, retries, logging
/// and the reading of answers sit above it and are tested against the script.
pub(crate) trait Exchange: Sync {
    /// One attempt: the answer (any status), or a transport failure of its kind.
    fn exchange<'a>(
        &'a self,
        method: reqwest::Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        credential: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>>;
}

/// The exchange a client's calls go through: reqwest's pool, or a script.
pub(crate) type Http = Arc<dyn Exchange + Send + Sync>;

impl<T: Exchange + Send + Sync + ?Sized> Exchange for Arc<T> {
    fn exchange<'a>(
        &'a self,
        method: reqwest::Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        credential: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>> {
        (**self).exchange(method, url, body, credential)
    }
}

impl Exchange for reqwest::Client {
    fn exchange<'a>(
        &'a self,
        method: reqwest::Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        credential: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>> {
        Box::pin(send(self, method, url, body, credential))
    }
}

/// The per-process part: a runtime and the connection pool that lives on it.
struct Transport {
    pid: u32,
    runtime: Runtime,
    http: Http,
    direct: Option<Arc<direct::Direct>>,
    /// Calls using it now; [`Client::release_if_idle`] leaves a busy one alone.
    busy: Arc<AtomicUsize>,
}

/// The runtime handle and connection pool lent to one call; the transport counts as busy
/// until it is dropped.
pub(crate) struct Lease {
    pub(crate) handle: Handle,
    pub(crate) http: Http,
    /// The calling thread's connections, where no proxy is set (see [`direct`]).
    pub(crate) direct: Option<Arc<direct::Direct>>,
    busy: Arc<AtomicUsize>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the connection pool is built.
pub(crate) struct Settings {
    /// The client's base URL, checked (`check_base_url`).
    pub(crate) base_url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// The base URL's host is loopback: no proxy.
    pub(crate) loopback: bool,
    /// Trusted besides the platform's roots (`ca_bundle`).
    pub(crate) ca_certs: Vec<CertificateDer<'static>>,
}

/// A client's transport, per process.
pub(crate) struct Transports {
    settings: Settings,
    slot: Mutex<Option<Transport>>,
    /// Where every attempt goes instead of the network (the core's tests): the calling
    /// thread's transport is then not used either.
    exchange: Option<Http>,
}

impl Transports {
    pub(crate) fn new(settings: Settings) -> Self {
        Transports {
            settings,
            slot: Mutex::new(None),
            exchange: None,
        }
    }

    /// The same, every attempt going to `exchange`.
    pub(crate) fn through(settings: Settings, exchange: Http) -> Self {
        Transports {
            settings,
            slot: Mutex::new(None),
            exchange: Some(exchange),
        }
    }

    /// This process's runtime handle and connection pool, built on first use and after a fork.
    pub(crate) fn lease(&self) -> Result<Lease> {
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
                direct: t.direct.clone(),
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
                kind: FailureKind::Config,
                attempts: 0,
            })?;
        let tls = tls_config(&self.settings.ca_certs)?;
        let mut builder = reqwest::Client::builder()
            .default_headers(self.settings.headers.clone())
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(direct::IDLE)
            .tcp_nodelay(true)
            .tls_backend_preconfigured((*tls).clone());
        if self.settings.loopback {
            builder = builder.no_proxy();
        }
        let http = {
            let _entered = runtime.enter();
            builder
                .build()
                .map_err(|e| transport_error("could not set up the HTTP client", e))?
        };
        let (http, direct): (Http, _) = match &self.exchange {
            Some(exchange) => (exchange.clone(), None),
            None => (
                Arc::new(http),
                direct::Direct::new(&self.settings, tls).map(Arc::new),
            ),
        };
        let transport = slot.insert(Transport {
            pid,
            runtime,
            http,
            direct,
            busy: Arc::default(),
        });
        Ok(lease(transport))
    }

    /// Stops this process's I/O thread and closes its connections, unless a call is using
    /// them; the next call builds them again. Called before `fork()`, so that the process forks
    /// without the client's threads (a fork with threads running is unsafe, and Python 3.12+
    /// warns of it). Returns whether there is no I/O thread left.
    pub(crate) fn release_if_idle(&self) -> bool {
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

pub(crate) fn read_ca_bundle(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| Error::InvalidInput(format!("ca_bundle '{shown}' cannot be read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::InvalidInput(format!("ca_bundle '{shown}' is not a PEM bundle: {e}"))
        })?;
    if certs.is_empty() {
        return Err(Error::InvalidInput(format!(
            "ca_bundle '{shown}' holds no PEM certificate"
        )));
    }
    Ok(certs)
}

/// The one TLS configuration of both transports: the platform's trusted roots (which honour
/// `SSL_CERT_FILE`) and `extra` ones, rustls's default provider, HTTP/1.1.
fn tls_config(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>> {
    let failed = |e: rustls::Error| Error::Transport {
        message: format!("could not set up TLS: {e}"),
        kind: FailureKind::Config,
        attempts: 0,
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = match extra.is_empty() {
        true => rustls_platform_verifier::Verifier::new(provider.clone()),
        false => rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra.iter().cloned(),
            provider.clone(),
        ),
    }
    .map_err(failed)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One attempt: sends the request and reads the answer, as a stream of chunks (up to
/// [`ANSWER_BASE_BYTES`] and more for a long request; see there). The answer's text is cleared
/// of the credential's secrets. A failure is an [`Error::Transport`] of its kind.
pub(crate) async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Vec<u8>>,
    credential: Credential<'_>,
) -> Result<Answer> {
    let mut request = http.request(method, url);
    request = match credential {
        Credential::Bearer(token) => {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| unsendable_token())?;
            value.set_sensitive(true);
            request
                .header(reqwest::header::AUTHORIZATION, value)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
        }
        Credential::Form(_) => request.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=utf-8",
        ),
    };
    let sent_bytes = body.as_ref().map_or(0, Vec::len);
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error("the request to HubSpot failed", e))?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let head = Head::read(status, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    });
    let limit = head.limit(sent_bytes);
    let announced = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0).min(limit));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error("reading HubSpot's answer failed", e))?
    {
        if body.len() + chunk.len() > limit {
            if head.success() {
                return Err(oversize(limit, sent_bytes));
            }
            // Of an error page, the start says enough.
            body.extend_from_slice(&chunk[..limit - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(head.answer(body, credential))
}

/// What an answer's status line and headers say, read the same by both transports.
pub(crate) struct Head {
    status: u16,
    correlation_id: Option<String>,
    retry_after: Option<Duration>,
    rate: RateHeaders,
}

impl Head {
    /// Reads the headers the client uses; `header` gives one by its (lower-case) name.
    pub(crate) fn read<'h>(status: u16, header: impl Fn(&str) -> Option<&'h str>) -> Head {
        let number = |name: &str| header(name).and_then(|v| v.trim().parse::<u32>().ok());
        Head {
            status,
            correlation_id: header("x-hubspot-correlation-id").map(str::to_owned),
            retry_after: header("retry-after")
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
            rate: RateHeaders {
                max: number("x-hubspot-ratelimit-max"),
                remaining: number("x-hubspot-ratelimit-remaining"),
                interval: number("x-hubspot-ratelimit-interval-milliseconds")
                    .map(|ms| Duration::from_millis(ms.into())),
                secondly: number("x-hubspot-ratelimit-secondly"),
            },
        }
    }

    pub(crate) fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The most of the body read for a request of `sent_bytes` (see [`ANSWER_BASE_BYTES`]).
    pub(crate) fn limit(&self, sent_bytes: usize) -> usize {
        if self.success() {
            ANSWER_BASE_BYTES.saturating_add(sent_bytes.saturating_mul(ANSWER_PER_REQUEST_BYTE))
        } else {
            ERROR_BODY_BYTES
        }
    }

    /// The answer, its text cleared of the credential's secrets.
    pub(crate) fn answer(self, body: Vec<u8>, credential: Credential<'_>) -> Answer {
        Answer {
            status: self.status,
            correlation_id: self.correlation_id,
            retry_after: self.retry_after,
            rate: self.rate,
            body: match credential {
                Credential::Bearer(token) => scrub(body, token),
                Credential::Form(secrets) => secrets.iter().fold(body, |b, s| scrub(b, s)),
            },
        }
    }
}

/// A 2xx answer longer than the client reads (`limit`) for a request of `sent_bytes`.
pub(crate) fn oversize(limit: usize, sent_bytes: usize) -> Error {
    Error::Transport {
        message: format!(
            "HubSpot's answer is longer than {limit} bytes, the most this client reads \
             for a request of {sent_bytes} bytes; it may have been applied"
        ),
        kind: FailureKind::Oversize,
        attempts: 1,
    }
}

/// The error of an access token that cannot go in an HTTP header.
pub(crate) fn unsendable_token() -> Error {
    Error::Transport {
        message: "the access token contains characters not allowed in an HTTP header (a line \
                  break or a control character?)"
            .into(),
        kind: FailureKind::Config,
        attempts: 0,
    }
}

/// Whether a word after `Bearer` or `Basic` is a credential rather than English ("basic
/// validation"): long enough, and not letters of one case only.
fn looks_secret(word: &[u8]) -> bool {
    let has = |f: fn(&u8) -> bool| word.iter().any(f);
    word.len() >= 8
        && (has(u8::is_ascii_digit)
            || has(|c| !c.is_ascii_alphanumeric())
            || (has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase)))
}

/// The answer's text without the token, and without any `Bearer` or `Basic` credential: a
/// proxy's error page may list the request's headers, and every text an error quotes comes
/// from here.
pub(crate) fn scrub(mut body: Vec<u8>, secret: &str) -> Vec<u8> {
    const HIDDEN: &[u8] = b"[redacted]";
    let secret = secret.as_bytes();
    if !secret.is_empty() && body.windows(secret.len()).any(|w| w == secret) {
        let mut out = Vec::with_capacity(body.len());
        let mut rest = &body[..];
        while let Some(at) = rest.windows(secret.len()).position(|w| w == secret) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(HIDDEN);
            rest = &rest[at + secret.len()..];
        }
        out.extend_from_slice(rest);
        body = out;
    }
    let credential = |c: u8| c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < body.len() {
        let scheme = [&b"bearer"[..], b"basic"]
            .into_iter()
            .find(|w| body[i..].len() > w.len() && body[i..i + w.len()].eq_ignore_ascii_case(w));
        let Some(scheme) = scheme else {
            i += 1;
            continue;
        };
        let starts_word = i == 0 || !body[i - 1].is_ascii_alphanumeric();
        let mut start = i + scheme.len();
        while start < body.len() && (body[start] == b' ' || body[start] == b'\t') {
            start += 1;
        }
        let mut end = start;
        while end < body.len() && credential(body[end]) {
            end += 1;
        }
        if starts_word && start > i + scheme.len() && looks_secret(&body[start..end]) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
            out.extend_from_slice(&body[copied..start]);
            out.extend_from_slice(HIDDEN);
            copied = end;
        }
        i = end.max(i + 1);
    }
    match out {
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            out
        }
        None => body,
    }
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

/// What a TLS failure means, in plain words, when rustls says what it was.
fn tls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::{CertificateError, Error as Tls};
    let tls = find_source::<Tls>(err)?;
    let untrusted = "is not signed by an authority this machine trusts (a self-signed \
                     certificate, or one from a private CA: pass ca_bundle= or set SSL_CERT_FILE)";
    Some(match tls {
        Tls::InvalidCertificate(c) => match c {
            // A self-signed certificate is checked against the trusted roots' keys: it fails
            // as an unknown issuer, a bad signature or a signature no root's key can check.
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                format!("the server's certificate {untrusted}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is not for this host name".to_owned()
            }
            CertificateError::Revoked => "the server's certificate is revoked".to_owned(),
            other => format!("the server's certificate was refused ({other:?})"),
        },
        Tls::InvalidMessage(_) | Tls::InappropriateMessage { .. } => {
            "the server does not speak TLS on this port (is it plain http?)".to_owned()
        }
        other => format!("TLS failed ({other})"),
    })
}

/// The first error of type `E` along `err`'s chain of causes, looking inside I/O errors too
/// (whose `source()` skips the error they wrap).
fn find_source<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(found) = io.get_ref().and_then(|inner| find_source::<E>(inner)) {
                return Some(found);
            }
        }
        next = e.source();
    }
    None
}

/// The kind of a reqwest failure, from its type and its chain of causes: a TLS error of rustls
/// anywhere along the chain is TLS (a certificate, or TLS spoken to a server that does not),
/// whatever reqwest calls the step that failed.
fn kind_of(err: &reqwest::Error, tls: bool) -> FailureKind {
    if err.is_builder() {
        FailureKind::Config
    } else if tls {
        FailureKind::Tls
    } else if err.is_timeout() {
        FailureKind::Timeout
    } else if err.is_connect() {
        FailureKind::Connect
    } else if err.is_body() || err.is_decode() {
        FailureKind::Body
    } else if err.is_request() {
        FailureKind::Reset
    } else {
        FailureKind::Config
    }
}

/// A reqwest failure as a transport error of its kind (see [`FailureKind::transient`]).
pub(crate) fn transport_error(what: &str, err: reqwest::Error) -> Error {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let chain = cause_chain(&err);
    let tls = tls_cause(&err);
    let kind = kind_of(&err, tls.is_some());
    let what = if timeout {
        "the request to HubSpot timed out"
    } else {
        what
    };
    let message = match tls {
        Some(cause) => format!("{what}: {cause} ({chain})"),
        None => format!("{what}: {chain}"),
    };
    Error::Transport {
        message,
        kind,
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    fn scrubbed(text: &str, secret: &str) -> String {
        String::from_utf8(scrub(text.as_bytes().to_vec(), secret)).unwrap()
    }

    #[test]
    fn answers_are_cleared_of_the_token_and_any_credential() {
        let token = "pat-na1-11111111-2222";
        let page = "<pre>GET /x\nAuthorization: Bearer pat-na1-11111111-2222\nX: pat-na1-11111111-2222</pre>";
        let out = scrubbed(page, token);
        assert!(!out.contains(token), "{out}");
        assert_eq!(
            out,
            "<pre>GET /x\nAuthorization: Bearer [redacted]\nX: [redacted]</pre>"
        );
        // Another credential, any case, and a proxy's Basic one.
        let out = scrubbed(
            r#"{"h": "authorization: bearer abc.DEF-123=", "p": "Basic dXNlcjpwYXNz"}"#,
            token,
        );
        assert_eq!(
            out,
            r#"{"h": "authorization: bearer [redacted]", "p": "Basic [redacted]"}"#
        );
        // Words that merely contain the schemes, and text without any, are left alone.
        for same in [
            "A basic validation error",
            "bearer token required",
            "debearer xY1234567",
            "Bearer",
            "bearer: none",
            "Bearer [redacted]",
            "no secret here",
        ] {
            assert_eq!(scrubbed(same, token), same);
        }
    }
}
