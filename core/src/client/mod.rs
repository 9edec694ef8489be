//! The HTTP client: one connection pool per client and process (`transport`), shared by every
//! thread that uses it, with pacing, retries, and waits that the caller can interrupt; the
//! single upsert of both faces, bulk runs, and the portal's property definitions.
//!
//! Requests run on a small tokio runtime of the client's own and the calling thread waits for
//! them in slices of [`SLICE`], asking [`Hooks::check`] between slices: that is how a Python
//! signal handler (Ctrl-C, a task timeout) gets to run while a request is in flight. The sync
//! single upsert is sent by the calling thread itself ([`crate::transport::Here`]), with waits in the same
//! slices, where no proxy is set.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::Url;
use tokio::runtime::Handle;

use crate::api::{self, ApiVersion};
use crate::auth::{Auth, AuthConfig};
use crate::error::{Error, Result};
use crate::pacing::{Limit, Pacer};
use crate::retry::RetryPolicy;
use crate::transport::{read_ca_bundle, Answer, Settings, Transports};

mod archive;
mod associations;
mod batches;
mod definitions;
mod oauth;
mod request;
mod single;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod run_tests;

use crate::context::{Hooks, Level, Log, SLICE};
pub use archive::Archived;
pub use associations::{Associated, Association, Link, Linked, Linking};

/// What a [`Client`] is built from: every option of `HubSpot(...)` but the two that decide how
/// Python values are read (`missing`, `assume_utc`, in the binding's `ConvertOptions`).
#[derive(Clone)]
pub struct ClientConfig {
    /// An access token, or an OAuth app's credentials.
    pub auth: AuthConfig,
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

/// HubSpot's limit for public (OAuth) apps: 110 requests per 10 s per installing account.
pub(crate) const OAUTH_LIMIT: Limit = Limit {
    max: 110,
    window: Duration::from_secs(10),
};

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT_TEXT: &str = concat!("hubspot-upsert/", env!("CARGO_PKG_VERSION"));

pub struct Client {
    base_url: String,
    /// Never shown: the tokens are cleared from every answer's text before anything quotes it.
    auth: Auth,
    retry: RetryPolicy,
    /// One attempt's limit: how long a run stopped by the caller's code waits for answers.
    timeout: Duration,
    pacer: Pacer,
    transports: Transports,
    /// Each object type's property definitions, as far as they are known.
    definitions: Mutex<std::collections::HashMap<api::ObjectType, definitions::Definitions>>,
    /// The portal the credentials belong to, once read.
    portal: Mutex<Option<i64>>,
    /// The association labels of each pair of object types `(from, to)`, once read.
    association_labels:
        Mutex<std::collections::HashMap<(String, String), Vec<api::AssociationLabel>>>,
    /// This client has logged its paths (or found them logged): see [`Client::log_paths`].
    paths_said: std::sync::atomic::AtomicBool,
    /// The API version of every path: a date version, or `Legacy` (v1's single upsert by
    /// email, v3's batches and definitions).
    api: ApiVersion,
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
pub(crate) fn check_base_url(base_url: &str) -> Result<(String, bool)> {
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

impl Client {
    /// Checks the configuration. Builds no runtime or connection pool yet: that happens on
    /// first use, in the process that uses it.
    pub fn new(config: ClientConfig) -> Result<Self> {
        Client::with_exchange(config, None)
    }

    /// A client whose every attempt goes to `exchange` instead of the network: whole calls
    /// (bulk runs, definitions, associations) on a scripted HubSpot, in the core's tests.
    #[cfg(test)]
    pub(crate) fn through(config: ClientConfig, exchange: crate::transport::Http) -> Result<Self> {
        Client::with_exchange(config, Some(exchange))
    }

    fn with_exchange(
        config: ClientConfig,
        exchange: Option<crate::transport::Http>,
    ) -> Result<Self> {
        let (base_url, loopback) = check_base_url(&config.base_url)?;
        let mut pacer = Pacer::new(config.rate_limit);
        let auth = match config.auth {
            AuthConfig::Token(token) => {
                let token = token.trim();
                if token.is_empty() {
                    return Err(Error::InvalidInput(
                        "no HubSpot access token: pass HubSpot(token) or set \
                         HUBSPOT_ACCESS_TOKEN (a service key or private app token), or give an \
                         OAuth app's credentials"
                            .into(),
                    ));
                }
                if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                    return Err(Error::InvalidInput(
                        "the access token contains characters not allowed in an HTTP header \
                         (a line break or a control character?)"
                            .into(),
                    ));
                }
                AuthConfig::Token(token.to_owned())
            }
            AuthConfig::OAuth { app, on_token } => {
                for (what, value) in [
                    ("client id", &app.client_id),
                    ("client secret", &app.client_secret),
                    ("refresh token", &app.refresh_token),
                ] {
                    if value.trim().is_empty() {
                        return Err(Error::InvalidInput(format!(
                            "the OAuth app's {what} is empty"
                        )));
                    }
                }
                // Public apps' limit, until HubSpot's headers say otherwise.
                pacer = pacer.assuming(OAUTH_LIMIT);
                AuthConfig::OAuth { app, on_token }
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_TEXT));
        let ca_certs = match &config.ca_bundle {
            Some(path) => read_ca_bundle(path)?,
            None => Vec::new(),
        };
        Ok(Client {
            auth: Auth::new(auth),
            base_url: base_url.clone(),
            retry: config.retry,
            timeout: config.timeout,
            pacer,
            transports: {
                let settings = Settings {
                    base_url: base_url.clone(),
                    headers,
                    timeout: config.timeout,
                    connect_timeout: config.connect_timeout.min(config.timeout),
                    loopback,
                    ca_certs,
                };
                match exchange {
                    Some(exchange) => Transports::through(settings, exchange),
                    None => Transports::new(settings),
                }
            },
            definitions: Mutex::default(),
            portal: Mutex::default(),
            association_labels: Mutex::default(),
            paths_said: Default::default(),
            api: config
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
    pub(super) fn run<F: Future>(
        &self,
        handle: &Handle,
        future: F,
        hooks: &dyn Hooks,
    ) -> Result<F::Output> {
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

    /// Runs `future` on the calling thread where it can: polled once, in the runtime's
    /// context, it ends there when it does not wait (a request through [`crate::transport::Here`] is done by the
    /// calling thread itself); where it waits (for room in the rate window, before a retry),
    /// it goes on as [`Client::run`] does.
    pub(super) fn run_here<F: Future>(
        &self,
        handle: &Handle,
        future: F,
        hooks: &dyn Hooks,
    ) -> Result<F::Output> {
        let _entered = handle.enter();
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => Ok(output),
            std::task::Poll::Pending => self.run(handle, future, hooks),
        }
    }

    /// [`Client::request`] on the calling thread, asking `hooks` every slice whether to stop.
    pub(super) fn request_blocking(
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

    /// Says once per process, at INFO, which paths clients of this configuration call.
    pub(super) fn log_paths<L: Log + ?Sized>(&self, hooks: &L) {
        use std::sync::atomic::Ordering;
        if self.paths_said.load(Ordering::Relaxed) {
            return;
        }
        static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let line = format!(
            "HubSpot API paths: single upserts POST {}, bulk POST {} and GET {}",
            self.api.single_upsert_path(),
            self.api.batch_upsert_path(&Default::default()),
            self.api.properties_path(&Default::default())
        );
        let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
        if !said.contains(&line) {
            if hooks.enabled(Level::Info) {
                hooks.log(Level::Info, &line);
            }
            said.push(line);
        }
        self.paths_said.store(true, Ordering::Relaxed);
    }
}
