//! The calling thread's transport: HTTP/1.1 on blocking sockets of this process (TLS by rustls,
//! with the same configuration as the I/O thread's pool), for the sync single upsert. The
//! calling thread writes the request and reads the answer itself, with the GIL released: no
//! hand-off to the I/O thread and back, which is most of what one upsert costs beyond the
//! server's own time. Only connecting goes through the I/O runtime (its resolver and connect
//! timeout), as a task the calling thread waits for in slices.
//!
//! Every wait is cut into slices of [`SLICE`] (the sockets' read timeout), and the caller's
//! hooks are asked between slices, as on the I/O thread: a Python signal handler runs within
//! about 50 ms. Connections are kept for [`IDLE`] and reused by any thread; one that HubSpot
//! closed while idle is noticed on reuse (nothing of an answer came) and the request goes
//! again on a new one, as the upsert is idempotent.
//!
//! Not used where a proxy is set for the base URL's scheme (the I/O thread's pool goes
//! through it), nor by the async face and bulk runs, which need the I/O thread's concurrency.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::runtime::Handle;

use super::{
    cause_chain, oversize, tls_cause, unsendable_token, Answer, Credential, Exchange, Head,
    Settings,
};
use crate::context::{Hooks, SLICE};
use crate::error::{Error, FailureKind, Result};

/// How long an idle connection is kept (both transports).
pub(crate) const IDLE: Duration = Duration::from_secs(50);
/// Idle connections kept at most: one per thread that upserts at once, about.
const KEPT: usize = 32;
/// The longest status line and headers read.
const HEAD_BYTES: usize = 64 << 10;

/// The calling thread's connections to the base URL's host, for one client in one process.
pub(crate) struct Direct {
    /// `scheme://authority` of the base URL: what precedes the request target in a URL.
    origin: String,
    /// The `Host` header.
    authority: String,
    /// Where to connect: the host (without an IPv6 literal's brackets) and port.
    host: String,
    port: u16,
    /// TLS, for an `https` base URL: the configuration and the name the certificate must have.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The default header lines (`User-Agent`), ready to write.
    headers: Vec<u8>,
    timeout: Duration,
    connect_timeout: Duration,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// One attempt on the calling thread: [`Direct`] with the runtime that connects and the
/// caller's hooks. The [`Exchange`] the sync single upsert sends through.
pub(crate) struct Here<'a> {
    pub(crate) direct: &'a Direct,
    pub(crate) handle: &'a Handle,
    pub(crate) hooks: &'a dyn Hooks,
}

impl Exchange for Here<'_> {
    /// Does the whole attempt before returning: the future is ready.
    fn exchange<'a>(
        &'a self,
        method: reqwest::Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        credential: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>> {
        let answer = self.direct.exchange(self, &method, url, body, credential);
        Box::pin(std::future::ready(answer))
    }
}

/// Whether a proxy variable applies to URLs of `scheme` (reqwest reads the same ones).
fn proxied(scheme: &str) -> bool {
    let names: &[&str] = match scheme {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    names
        .iter()
        .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

impl Direct {
    /// The calling thread's transport for `settings`' base URL, unless a proxy is set for it.
    pub(crate) fn new(settings: &Settings, tls: Arc<rustls::ClientConfig>) -> Option<Direct> {
        let url = reqwest::Url::parse(&settings.base_url).ok()?;
        if !settings.loopback && proxied(url.scheme()) {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        let tls = match url.scheme() {
            "https" => Some((tls, ServerName::try_from(host.clone()).ok()?)),
            _ => None,
        };
        let mut headers = Vec::new();
        for (name, value) in &settings.headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        Some(Direct {
            origin: format!("{}://{authority}", url.scheme()),
            authority,
            host,
            port,
            tls,
            headers,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
            idle: Mutex::default(),
        })
    }

    /// One attempt: the answer (any status), or a transport failure of its kind.
    fn exchange(
        &self,
        here: &Here<'_>,
        method: &reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        credential: Credential<'_>,
    ) -> Result<Answer> {
        let deadline = Instant::now() + self.timeout;
        let request = self.request(method, url, body.as_deref(), credential)?;
        let sent_bytes = body.as_ref().map_or(0, Vec::len);
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (self.connect(here, deadline)?, false),
            };
            let wait = Wait {
                hooks: here.hooks,
                deadline,
                timeout: self.timeout,
            };
            match conn.round_trip(&request, sent_bytes, &wait) {
                Ok((head, body, keep)) => {
                    if keep {
                        self.keep(conn);
                    }
                    return Ok(head.answer(body, credential));
                }
                // HubSpot closed it while it was idle: nothing of the request was used.
                Err(Failure::Stale) if reused => continue,
                Err(Failure::Stale) => {
                    return Err(failed(
                        FailureKind::Reset,
                        "the request to HubSpot failed: the connection closed before an answer",
                    ))
                }
                Err(Failure::Error(e)) => return Err(*e),
            }
        }
    }

    /// The request's bytes: its line, headers and body.
    fn request(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<&[u8]>,
        credential: Credential<'_>,
    ) -> Result<Vec<u8>> {
        let target = url
            .strip_prefix(&self.origin)
            .filter(|t| t.starts_with('/'))
            .ok_or_else(|| failed(FailureKind::Config, "a URL outside the base URL's host"))?;
        let body = body.unwrap_or_default();
        let mut out = Vec::with_capacity(256 + body.len());
        let line = format!("{method} {target} HTTP/1.1\r\nhost: {}\r\n", self.authority);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(&self.headers);
        match credential {
            Credential::Bearer(token) => {
                if token.bytes().any(|b| b.is_ascii_control()) {
                    return Err(unsendable_token());
                }
                out.extend_from_slice(b"authorization: Bearer ");
                out.extend_from_slice(token.as_bytes());
                out.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
            }
            Credential::Form(_) => out.extend_from_slice(
                b"content-type: application/x-www-form-urlencoded;charset=utf-8\r\n",
            ),
        }
        if !body.is_empty() || *method == reqwest::Method::POST {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Ok(out)
    }

    /// The most recently used idle connection still young enough, if any.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn keep(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < KEPT {
            idle.push((conn, Instant::now()));
        }
    }

    /// A new connection: resolved and connected by the I/O runtime (bounded by the connect
    /// timeout) while the calling thread waits in slices, then made blocking; TLS begun.
    fn connect(&self, here: &Here<'_>, deadline: Instant) -> Result<Conn> {
        let (tx, rx) = mpsc::channel();
        let (host, port) = (self.host.clone(), self.port);
        let limit = self
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        here.handle.spawn(async move {
            let connected =
                tokio::time::timeout(limit, tokio::net::TcpStream::connect((host.as_str(), port)))
                    .await;
            let _ = tx.send(connected);
        });
        let connected = loop {
            match rx.recv_timeout(SLICE) {
                Ok(connected) => break connected,
                Err(mpsc::RecvTimeoutError::Timeout) => here.hooks.check()?,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(failed(
                        FailureKind::Config,
                        "could not connect: the I/O thread stopped",
                    ))
                }
            }
        };
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let message = format!("the request to HubSpot failed: {}", cause_chain(&e));
                return Err(failed(FailureKind::Connect, &message));
            }
            Err(_) => {
                let message = format!(
                    "the request to HubSpot timed out: connecting took longer than {:.1} s",
                    limit.as_secs_f64()
                );
                return Err(failed(FailureKind::Timeout, &message));
            }
        };
        let tcp = stream
            .into_std()
            .and_then(|s| s.set_nonblocking(false).map(|()| s))
            .and_then(|s| s.set_nodelay(true).map(|()| s))
            .and_then(|s| s.set_read_timeout(Some(SLICE)).map(|()| s))
            .and_then(|s| s.set_write_timeout(Some(SLICE)).map(|()| s))
            .map_err(|e| {
                let message = format!("the request to HubSpot failed: {}", cause_chain(&e));
                failed(FailureKind::Connect, &message)
            })?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((config, name)) => {
                let session = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| failed(FailureKind::Tls, &format!("TLS failed ({e})")))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(session, tcp)))
            }
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }
}

fn failed(kind: FailureKind, message: &str) -> Error {
    Error::Transport {
        message: message.to_owned(),
        kind,
        attempts: 1,
    }
}

/// How one attempt waits: the caller's hooks between slices, until the deadline (`timeout`
/// after the attempt began).
struct Wait<'a> {
    hooks: &'a dyn Hooks,
    deadline: Instant,
    timeout: Duration,
}

impl Wait<'_> {
    /// After a slice passed without progress: the hooks' error, or the timeout's.
    fn idle(&self) -> std::result::Result<(), Failure> {
        self.hooks.check().map_err(fail)?;
        self.in_time()
    }

    fn in_time(&self) -> std::result::Result<(), Failure> {
        if Instant::now() >= self.deadline {
            let message = format!(
                "the request to HubSpot timed out (no answer within {:.1} s)",
                self.timeout.as_secs_f64()
            );
            return Err(fail(failed(FailureKind::Timeout, &message)));
        }
        Ok(())
    }
}

fn fail(error: Error) -> Failure {
    Failure::Error(Box::new(error))
}

/// Why a round trip did not end with an answer.
enum Failure {
    /// A kept connection was found closed before anything of an answer came.
    Stale,
    Error(Box<Error>),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A failed read or write as a transport error: TLS when rustls says so (a certificate, or a
/// server that does not speak TLS), else `kind`.
fn io_failure(what: &str, kind: FailureKind, e: &io::Error) -> Failure {
    let chain = cause_chain(e);
    fail(match tls_cause(e) {
        Some(cause) => failed(FailureKind::Tls, &format!("{what}: {cause} ({chain})")),
        None => failed(kind, &format!("{what}: {chain}")),
    })
}

/// One connection and the bytes read from it beyond the last answer (none, normally).
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    /// Writes `request` and reads its answer: the head, the body (up to the head's limit for
    /// a request of `sent_bytes`), and whether the connection can be used again.
    fn round_trip(
        &mut self,
        request: &[u8],
        sent_bytes: usize,
        wait: &Wait<'_>,
    ) -> std::result::Result<(Head, Vec<u8>, bool), Failure> {
        const SENDING: &str = "the request to HubSpot failed";
        if let Stream::Tls(tls) = &mut self.stream {
            // The handshake, first: its reads wait in slices like the answer's.
            while tls.conn.is_handshaking() {
                match tls.conn.complete_io(&mut tls.sock) {
                    Ok(_) => {}
                    Err(e) if timed_out(&e) => wait.idle()?,
                    Err(e) => return Err(io_failure(SENDING, FailureKind::Connect, &e)),
                }
            }
        }
        self.buf.clear();
        // Written in slices too: a server that does not read cannot hold the call for ever.
        let failure = |e: io::Error| match closed(&e) {
            true => Failure::Stale,
            false => io_failure(SENDING, FailureKind::Reset, &e),
        };
        let mut written = 0;
        while written < request.len() {
            match self.stream.write(&request[written..]) {
                Ok(0) => return Err(Failure::Stale),
                Ok(n) => {
                    written += n;
                    wait.in_time()?;
                }
                Err(e) if timed_out(&e) => wait.idle()?,
                Err(e) => return Err(failure(e)),
            }
        }
        loop {
            match self.stream.flush() {
                Ok(()) => break,
                Err(e) if timed_out(&e) => wait.idle()?,
                Err(e) => return Err(failure(e)),
            }
        }
        // The status line and headers.
        let (head_len, head, framing, keep) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let find = |name: &str| {
                        response
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .and_then(|h| std::str::from_utf8(h.value).ok())
                    };
                    if (100..200).contains(&status) {
                        // An interim answer (100 Continue): the real one follows.
                        self.buf.drain(..len);
                        continue;
                    }
                    let framing = Framing::of(status, &find);
                    let close = find("connection").is_some_and(|v| {
                        v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
                    });
                    let keep = !close && response.version == Some(1);
                    break (len, Head::read(status, find), framing, keep);
                }
                Ok(httparse::Status::Partial) if self.buf.len() < HEAD_BYTES => {}
                Ok(httparse::Status::Partial) => {
                    return Err(fail(failed(
                        FailureKind::Body,
                        "reading HubSpot's answer failed: its headers are too long",
                    )))
                }
                Err(e) => {
                    let message = format!("reading HubSpot's answer failed: not HTTP ({e})");
                    return Err(fail(failed(FailureKind::Body, &message)));
                }
            }
            // Closed or reset before any of an answer: a stale kept connection.
            let nothing_yet = self.buf.is_empty();
            match self.fill(wait) {
                Ok(0) | Err(Failure::Stale) if nothing_yet => return Err(Failure::Stale),
                Ok(0) => return Err(closed_mid_answer()),
                Ok(_) => {}
                Err(f) => return Err(mid_answer(f)),
            }
        };
        self.buf.drain(..head_len);
        let limit = head.limit(sent_bytes);
        let (body, whole) = match framing {
            Framing::Empty => (Vec::new(), true),
            Framing::Length(n) => {
                if n > limit && head.success() {
                    return Err(fail(oversize(limit, sent_bytes)));
                }
                let take = n.min(limit);
                self.read_to(take, wait)?;
                let body: Vec<u8> = self.buf.drain(..take).collect();
                (body, take == n)
            }
            Framing::Chunked => self.read_chunked(limit, &head, sent_bytes, wait)?,
            Framing::UntilClose => {
                loop {
                    if self.buf.len() > limit {
                        if head.success() {
                            return Err(fail(oversize(limit, sent_bytes)));
                        }
                        self.buf.truncate(limit);
                        break;
                    }
                    if self.fill(wait).map_err(mid_answer)? == 0 {
                        break;
                    }
                }
                (std::mem::take(&mut self.buf), false)
            }
        };
        let keep = keep && whole && self.buf.is_empty();
        Ok((head, body, keep))
    }

    /// Reads until `buf` holds at least `n` bytes.
    fn read_to(&mut self, n: usize, wait: &Wait<'_>) -> std::result::Result<(), Failure> {
        while self.buf.len() < n {
            if self.fill(wait).map_err(mid_answer)? == 0 {
                return Err(closed_mid_answer());
            }
        }
        Ok(())
    }

    /// A chunked body, up to `limit` bytes; whether it was read whole.
    fn read_chunked(
        &mut self,
        limit: usize,
        head: &Head,
        sent_bytes: usize,
        wait: &Wait<'_>,
    ) -> std::result::Result<(Vec<u8>, bool), Failure> {
        let bad = || {
            fail(failed(
                FailureKind::Body,
                "reading HubSpot's answer failed: a malformed chunk",
            ))
        };
        let mut body = Vec::new();
        loop {
            let line_end = self.line(1024, wait, bad)?;
            let line = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad())?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let at = self.line(HEAD_BYTES, wait, bad)?;
                    self.buf.drain(..at + 2);
                    if at == 0 {
                        return Ok((body, true));
                    }
                }
            }
            if body.len() + size > limit {
                if head.success() {
                    return Err(fail(oversize(limit, sent_bytes)));
                }
                // Of an error page, the start says enough.
                let room = limit - body.len();
                self.read_to(room, wait)?;
                body.extend(self.buf.drain(..room));
                return Ok((body, false));
            }
            self.read_to(size + 2, wait)?;
            body.extend(self.buf.drain(..size));
            if self.buf.drain(..2).as_slice() != b"\r\n" {
                return Err(bad());
            }
        }
    }

    /// Reads until `buf` holds a line: where its `\r\n` is; `too_long` when `max` bytes came
    /// without one.
    fn line(
        &mut self,
        max: usize,
        wait: &Wait<'_>,
        too_long: impl Fn() -> Failure,
    ) -> std::result::Result<usize, Failure> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(at);
            }
            if self.buf.len() > max {
                return Err(too_long());
            }
            self.read_to(self.buf.len() + 1, wait)?;
        }
    }

    /// Reads what the socket has, waiting in slices: how many bytes (0 at the end).
    fn fill(&mut self, wait: &Wait<'_>) -> std::result::Result<usize, Failure> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    wait.in_time()?;
                    return Ok(n);
                }
                Err(e) if timed_out(&e) => wait.idle()?,
                // Closed or reset: a TLS peer that closes without `close_notify` reads as an
                // unexpected end. Before any answer that is a stale connection; the callers
                // make it a cut body when part of an answer came.
                Err(e) if closed(&e) => return Err(Failure::Stale),
                Err(e) => {
                    return Err(io_failure(
                        "reading HubSpot's answer failed",
                        FailureKind::Body,
                        &e,
                    ))
                }
            }
        }
    }
}

fn closed_mid_answer() -> Failure {
    fail(failed(
        FailureKind::Body,
        "reading HubSpot's answer failed: the connection closed mid-answer",
    ))
}

/// A reset after part of the answer came: the body was cut.
fn mid_answer(f: Failure) -> Failure {
    match f {
        Failure::Stale => fail(failed(
            FailureKind::Body,
            "reading HubSpot's answer failed: the connection was reset mid-answer",
        )),
        other => other,
    }
}

/// How an answer's body ends.
enum Framing {
    /// No body (`204`, `304`).
    Empty,
    Length(usize),
    Chunked,
    /// Read until the server closes the connection.
    UntilClose,
}

impl Framing {
    fn of<'h>(status: u16, header: &impl Fn(&str) -> Option<&'h str>) -> Framing {
        if status == 204 || status == 304 {
            return Framing::Empty;
        }
        let chunked = header("transfer-encoding").is_some_and(|v| {
            v.rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            return Framing::Chunked;
        }
        match header("content-length").and_then(|v| v.trim().parse().ok()) {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The calling thread's transport against a scripted server on a real local socket: how
    //! answers are framed, kept connections, stale ones, limits, timeouts and stops.

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};

    use super::{Direct, Here};
    use crate::context::{Hooks, Level, Log};
    use crate::error::{Error, FailureKind, Raised, Result, Stop};
    use crate::transport::{Credential, Exchange, Settings};

    /// One scripted answer: its bytes, and whether the server closes the connection after it.
    struct Reply {
        bytes: Vec<u8>,
        close: bool,
        /// Held back this long before answering.
        delay: Duration,
    }

    fn reply(bytes: &str) -> Reply {
        Reply {
            bytes: bytes.as_bytes().to_vec(),
            close: false,
            delay: Duration::ZERO,
        }
    }

    /// A server that answers each request with the next reply; counts connections and keeps
    /// every request's head.
    struct Server {
        port: u16,
        connections: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    fn serve(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(std::collections::VecDeque::from(replies)));
        let (c, h) = (connections.clone(), heads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (replies, heads) = (replies.clone(), h.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let mut head = String::new();
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap();
                            }
                            head.push_str(&line);
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        heads.lock().unwrap().push(head);
                        let Some(next) = replies.lock().unwrap().pop_front() else {
                            return;
                        };
                        std::thread::sleep(next.delay);
                        if stream.write_all(&next.bytes).is_err() || next.close {
                            return;
                        }
                    }
                });
            }
        });
        Server {
            port,
            connections,
            heads,
        }
    }

    /// Hooks that stop the wait after `stop_after` checks (never, when None).
    struct Checks {
        count: AtomicU32,
        stop_after: Option<u32>,
    }

    impl Log for Checks {
        fn enabled(&self, _: Level) -> bool {
            false
        }
        fn log(&self, _: Level, _: &str) {}
    }

    impl Hooks for Checks {
        fn check(&self) -> Result<()> {
            let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
            match self.stop_after {
                Some(max) if n >= max => Err(Error::caller(Stop::Signal, Raised::new(()))),
                _ => Ok(()),
            }
        }
    }

    fn direct(port: u16, timeout: Duration) -> Direct {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("test"));
        let settings = Settings {
            base_url: format!("http://127.0.0.1:{port}"),
            headers,
            timeout,
            connect_timeout: timeout,
            loopback: true,
            ca_certs: Vec::new(),
        };
        let tls = super::super::tls_config(&[]).unwrap();
        Direct::new(&settings, tls).unwrap()
    }

    const TOKEN: &str = "pat-na1-secret-0000";

    fn kind(err: &Error) -> Option<FailureKind> {
        match err {
            Error::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Sends one POST through `direct` on the calling thread.
    fn post(direct: &Direct, hooks: &dyn Hooks) -> Result<crate::transport::Answer> {
        post_body(direct, hooks, b"{\"a\":1}".to_vec())
    }

    fn post_body(
        direct: &Direct,
        hooks: &dyn Hooks,
        body: Vec<u8>,
    ) -> Result<crate::transport::Answer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let here = Here {
            direct,
            handle: runtime.handle(),
            hooks,
        };
        let url = format!("{}/crm/x?y=1", direct.origin);
        let exchange = here.exchange(
            reqwest::Method::POST,
            &url,
            Some(body),
            Credential::Bearer(TOKEN),
        );
        runtime.block_on(exchange)
    }

    fn quiet() -> Checks {
        Checks {
            count: AtomicU32::new(0),
            stop_after: None,
        }
    }

    #[test]
    fn answers_of_every_framing_are_read_and_connections_kept() {
        let server = serve(vec![
            reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-HubSpot-RateLimit-Max: 190\r\nX-HubSpot-RateLimit-Remaining: 189\r\nX-HubSpot-Correlation-Id: c-1\r\n\r\n{}"),
            reply("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 207 Multi-Status\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n"),
            reply("HTTP/1.1 204 No Content\r\n\r\n"),
            Reply {
                close: true,
                ..reply(&format!("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n{{\"message\": \"Bearer {TOKEN} is bad\"}}"))
            },
        ]);
        let d = direct(server.port, Duration::from_secs(5));
        let hooks = quiet();
        let first = post(&d, &hooks).unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(first.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(
            (first.rate.max, first.rate.remaining),
            (Some(190), Some(189))
        );
        let second = post(&d, &hooks).unwrap();
        assert_eq!(
            (second.status, second.body.as_slice()),
            (207, &b"{\"a\":1}"[..])
        );
        let third = post(&d, &hooks).unwrap();
        assert_eq!((third.status, third.body.len()), (204, 0));
        // Read to the end of the connection; the token cleared from its text.
        let fourth = post(&d, &hooks).unwrap();
        assert_eq!(fourth.status, 401);
        let text = String::from_utf8(fourth.body).unwrap();
        assert!(
            !text.contains(TOKEN) && text.contains("[redacted]"),
            "{text}"
        );
        // Four requests on one connection, each with its headers.
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        let heads = server.heads.lock().unwrap();
        assert_eq!(heads.len(), 4);
        assert!(
            heads[0].starts_with("POST /crm/x?y=1 HTTP/1.1\r\n"),
            "{}",
            heads[0]
        );
        for expected in [
            &format!("host: 127.0.0.1:{}\r\n", server.port)[..],
            "user-agent: test\r\n",
            "content-type: application/json\r\n",
            "content-length: 7\r\n",
        ] {
            assert!(heads[0].contains(expected), "{expected:?} in {}", heads[0]);
        }
    }

    #[test]
    fn a_kept_connection_the_server_closed_is_replaced_once() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        // The server closes after the first answer without saying so: the kept connection is
        // stale, and the request goes again on a new one.
        let server = serve(vec![
            Reply {
                close: true,
                ..reply(ok)
            },
            reply(ok),
        ]);
        let d = direct(server.port, Duration::from_secs(5));
        let hooks = quiet();
        assert_eq!(post(&d, &hooks).unwrap().status, 200);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(post(&d, &hooks).unwrap().status, 200);
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        assert_eq!(server.heads.lock().unwrap().len(), 2);
    }

    #[test]
    fn failures_have_their_kinds() {
        // Nothing listens: connect.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = post(&direct(port, Duration::from_secs(5)), &quiet()).unwrap_err();
        assert!(
            matches!(&err, Error::Transport { kind: FailureKind::Connect, message, .. } if message.to_lowercase().contains("refused")),
            "{err:?}"
        );
        // A body cut short by a closed connection.
        let server = serve(vec![Reply {
            close: true,
            ..reply("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
        }]);
        let err = post(&direct(server.port, Duration::from_secs(5)), &quiet()).unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Body), "{err:?}");
        // A 2xx longer than the client reads: it may have been applied.
        let server = serve(vec![reply(
            "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{}",
        )]);
        let err = post(&direct(server.port, Duration::from_secs(5)), &quiet()).unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Oversize), "{err:?}");
        // Not HTTP.
        let server = serve(vec![reply("SSH-2.0-OpenSSH\r\n\r\n")]);
        let err = post(&direct(server.port, Duration::from_secs(5)), &quiet()).unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Body), "{err:?}");
    }

    #[test]
    fn a_slow_answer_times_out_and_hooks_stop_the_wait_between_slices() {
        let slow = || Reply {
            delay: Duration::from_secs(2),
            ..reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        };
        let server = serve(vec![slow()]);
        let hooks = quiet();
        let err = post(&direct(server.port, Duration::from_millis(300)), &hooks).unwrap_err();
        assert!(
            matches!(&err, Error::Transport { kind: FailureKind::Timeout, message, .. } if message.contains("timed out")),
            "{err:?}"
        );
        // The wait was cut into slices, each asking the hooks.
        assert!(hooks.count.load(Ordering::SeqCst) >= 4);
        let server = serve(vec![slow()]);
        let stopping = Checks {
            count: AtomicU32::new(0),
            stop_after: Some(2),
        };
        let started = std::time::Instant::now();
        let err = post(&direct(server.port, Duration::from_secs(10)), &stopping).unwrap_err();
        assert_eq!(err.stop(), Some(Stop::Signal), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_before_sending() {
        let server = serve(vec![]);
        let d = direct(server.port, Duration::from_secs(5));
        let err = d
            .request(
                &reqwest::Method::POST,
                &format!("{}/x", d.origin),
                None,
                Credential::Bearer("a\r\nb"),
            )
            .unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Config), "{err:?}");
        let err = d
            .request(
                &reqwest::Method::POST,
                "http://elsewhere/x",
                None,
                Credential::Bearer("t"),
            )
            .unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Config), "{err:?}");
    }

    #[test]
    fn a_server_that_does_not_read_cannot_hold_the_call() {
        // It accepts and never reads: the request's 64 MB fill the socket's buffers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let kept: Vec<_> = listener.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(kept);
        });
        let big = vec![b'x'; 64 << 20];
        let err = post_body(
            &direct(port, Duration::from_millis(300)),
            &quiet(),
            big.clone(),
        )
        .unwrap_err();
        assert_eq!(kind(&err), Some(FailureKind::Timeout), "{err:?}");
        let stopping = Checks {
            count: AtomicU32::new(0),
            stop_after: Some(2),
        };
        let err = post_body(&direct(port, Duration::from_secs(10)), &stopping, big).unwrap_err();
        assert_eq!(err.stop(), Some(Stop::Signal), "{err:?}");
    }
}
