//! Who the client is at HubSpot: a fixed access token (a service key or private app token),
//! or an OAuth app's, whose access tokens last 30 minutes. An OAuth client gets one from
//! HubSpot's token endpoint with its refresh token on first use, refreshes it ahead of its
//! expiry (one refresh at a time, for every thread of the client), and at once when HubSpot
//! answers 401 to it. The request that does it is the client's (`client/oauth.rs`); this is
//! the state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An OAuth app's credentials and the refresh token one installation gave it.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

/// What one refresh gave, as handed to the application to keep (`on_token`).
#[derive(Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: Duration,
}

/// Called with each new token, on the client's I/O thread.
pub type OnToken = Arc<dyn Fn(&Tokens) + Send + Sync>;

/// How a client authenticates, as configured.
#[derive(Clone)]
pub enum AuthConfig {
    Token(String),
    OAuth {
        app: OAuthApp,
        on_token: Option<OnToken>,
    },
}

/// An access token lent to one attempt, and which one it is: a 401 to it retires that one
/// only, not a newer one another thread got meanwhile.
pub(crate) struct Lent {
    pub(crate) token: String,
    pub(crate) generation: u64,
}

/// The client's authentication at run time.
pub(crate) enum Auth {
    Token(String),
    OAuth(OAuth),
}

pub(crate) struct OAuth {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) on_token: Option<OnToken>,
    state: Mutex<State>,
    /// Held while a refresh is in flight: the other callers wait for its token.
    pub(crate) refreshing: tokio::sync::Mutex<()>,
}

struct State {
    /// The token in use and when to refresh it (a little before it expires).
    access: Option<(String, Instant)>,
    refresh_token: String,
    generation: u64,
}

impl Auth {
    pub(crate) fn new(config: AuthConfig) -> Auth {
        match config {
            AuthConfig::Token(token) => Auth::Token(token),
            AuthConfig::OAuth { app, on_token } => Auth::OAuth(OAuth {
                client_id: app.client_id,
                client_secret: app.client_secret,
                on_token,
                state: Mutex::new(State {
                    access: None,
                    refresh_token: app.refresh_token,
                    generation: 0,
                }),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// How long before its expiry a token is refreshed: a tenth of its life, at most 5 minutes.
pub(crate) fn refresh_margin(life: Duration) -> Duration {
    (life / 10).min(Duration::from_secs(300))
}

impl OAuth {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token in use, unless it is due for a refresh (or there is none yet).
    pub(crate) fn current(&self, now: Instant) -> Option<Lent> {
        let state = self.lock();
        match &state.access {
            Some((token, refresh_at)) if now < *refresh_at => Some(Lent {
                token: token.clone(),
                generation: state.generation,
            }),
            _ => None,
        }
    }

    pub(crate) fn refresh_token(&self) -> String {
        self.lock().refresh_token.clone()
    }

    /// Keeps what a refresh gave; returns the token lent from it.
    pub(crate) fn keep(&self, tokens: &Tokens, now: Instant) -> Lent {
        let mut state = self.lock();
        let life = tokens.expires_in;
        state.access = Some((
            tokens.access_token.clone(),
            now + life.saturating_sub(refresh_margin(life)),
        ));
        state.refresh_token = tokens.refresh_token.clone();
        state.generation += 1;
        Lent {
            token: tokens.access_token.clone(),
            generation: state.generation,
        }
    }

    /// HubSpot refused the token of `generation`: it is not lent again.
    pub(crate) fn retire(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.access = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_ahead_and_retired_once() {
        let Auth::OAuth(oauth) = Auth::new(AuthConfig::OAuth {
            app: OAuthApp {
                client_id: "id".into(),
                client_secret: "secret".into(),
                refresh_token: "r1".into(),
            },
            on_token: None,
        }) else {
            panic!("an OAuth client")
        };
        let now = Instant::now();
        assert!(
            oauth.current(now).is_none(),
            "none before the first refresh"
        );
        let first = oauth.keep(
            &Tokens {
                access_token: "a1".into(),
                refresh_token: "r2".into(),
                expires_in: Duration::from_secs(1800),
            },
            now,
        );
        assert_eq!(oauth.refresh_token(), "r2");
        assert_eq!(oauth.current(now).unwrap().token, "a1");
        // Due three minutes before it expires.
        assert!(oauth.current(now + Duration::from_secs(1619)).is_some());
        assert!(oauth.current(now + Duration::from_secs(1620)).is_none());
        let second = oauth.keep(
            &Tokens {
                access_token: "a2".into(),
                refresh_token: "r2".into(),
                expires_in: Duration::from_secs(2),
            },
            now,
        );
        // A 401 to the older token leaves the newer one alone.
        oauth.retire(first.generation);
        assert_eq!(oauth.current(now).unwrap().token, "a2");
        oauth.retire(second.generation);
        assert!(oauth.current(now).is_none());
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
    }
}
