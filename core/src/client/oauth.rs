//! OAuth access tokens: got and refreshed at HubSpot's date-versioned token endpoint (`POST
//! /oauth/2026-03/token`, a form with the app's id and secret and the refresh token; v1's
//! `/oauth/v1/token` goes on 2027-02-16), through the same request path as every call: paced,
//! retried (its own 429s too), logged, its secrets cleared from answers. Refusals read either
//! shape: HubSpot's `status`/`message`, or RFC 6749's `error`/`error_description`.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::{Client, Level, Log};
use crate::auth::{Auth, Lent, Tokens};
use crate::error::{ApiError, Error, Result};
use crate::transport::Exchange;

/// Where OAuth tokens come from, under the base URL.
pub(crate) const TOKEN_PATH: &str = "/oauth/2026-03/token";

impl Client {
    /// The access token for one attempt: the fixed one, or an OAuth app's, refreshed first
    /// when it is due (one refresh at a time; the callers that wait get its token). Boxed: a
    /// refresh is a request, and a request may need a refresh.
    pub(super) fn access_token<'a, L: Log + ?Sized>(
        &'a self,
        http: &'a dyn Exchange,
        log: &'a L,
    ) -> Pin<Box<dyn Future<Output = Result<Lent>> + Send + 'a>> {
        Box::pin(self.lend_token(http, log))
    }

    async fn lend_token<L: Log + ?Sized>(&self, http: &dyn Exchange, log: &L) -> Result<Lent> {
        let oauth = match &self.auth {
            Auth::Token(token) => {
                return Ok(Lent {
                    token: token.clone(),
                    generation: 0,
                })
            }
            Auth::OAuth(oauth) => oauth,
        };
        if let Some(lent) = oauth.current(now()) {
            return Ok(lent);
        }
        let _refreshing = oauth.refreshing.lock().await;
        if let Some(lent) = oauth.current(now()) {
            return Ok(lent);
        }
        let refresh_token = oauth.refresh_token();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &oauth.client_id)
            .append_pair("client_secret", &oauth.client_secret)
            .append_pair("refresh_token", &refresh_token)
            .finish()
            .into_bytes();
        let url = format!("{}{TOKEN_PATH}", self.base_url);
        // The answer carries the refresh token to keep: only the app's secret is cleared from
        // it (and the refresh token from an error's text, below).
        let secrets = [oauth.client_secret.as_str()];
        let answer = self
            .request_form(http, &url, body, &secrets, log)
            .await
            .map_err(|e| refused_refresh(e, &refresh_token))?;
        let tokens = read_tokens(&answer.body, &refresh_token).ok_or_else(|| {
            // Not quoted: a token answer carries secrets.
            Error::from(ApiError::not_understood(
                answer.status,
                answer.correlation_id.clone(),
                b"",
                "the OAuth token request",
                " (no access token in it)",
            ))
        })?;
        let lent = oauth.keep(&tokens, now());
        if log.enabled(Level::Info) {
            let life = tokens.expires_in.as_secs_f64();
            log.log(
                Level::Info,
                &format!("got a new OAuth access token (it expires in {life:.0} s)"),
            );
        }
        if let Some(on_token) = &oauth.on_token {
            on_token(&tokens);
        }
        Ok(lent)
    }

    /// HubSpot answered 401 to the token of `generation`: it is not lent again, and the
    /// next attempt gets a new one. Whether there is a new one to get (an OAuth client).
    pub(super) fn retire_token(&self, generation: u64) -> bool {
        match &self.auth {
            Auth::Token(_) => false,
            Auth::OAuth(oauth) => {
                oauth.retire(generation);
                true
            }
        }
    }
}

/// The time on the runtime's clock (tokio's: paused in tests, the system's otherwise).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// `{"access_token", "refresh_token", "expires_in"}`; the refresh token stays `kept` when the
/// answer gives none.
fn read_tokens(body: &[u8], kept: &str) -> Option<Tokens> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let access_token = json.get("access_token")?.as_str()?.to_owned();
    let seconds = json
        .get("expires_in")
        .and_then(Json::as_u64)
        .unwrap_or(1800);
    let refresh_token = json
        .get("refresh_token")
        .and_then(Json::as_str)
        .unwrap_or(kept)
        .to_owned();
    Some(Tokens {
        access_token,
        refresh_token,
        expires_in: Duration::from_secs(seconds.max(1)),
    })
}

/// A refusal of the token endpoint (a refresh token revoked or unknown, a wrong client id or
/// secret) is an authentication failure: nothing can be sent until the app is installed
/// again. It says so, with HubSpot's own code and message.
fn refused_refresh(error: Error, refresh_token: &str) -> Error {
    match error {
        Error::Api(e) => e.refused_refresh(refresh_token).into(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_read() {
        let t = read_tokens(
            br#"{"token_type":"bearer","access_token":"a","refresh_token":"r2","expires_in":1800}"#,
            "r1",
        )
        .unwrap();
        assert_eq!(
            (t.access_token.as_str(), t.refresh_token.as_str()),
            ("a", "r2")
        );
        assert_eq!(t.expires_in, Duration::from_secs(1800));
        let kept = read_tokens(br#"{"access_token":"a","expires_in":2}"#, "r1").unwrap();
        assert_eq!(kept.refresh_token, "r1");
        assert!(read_tokens(br#"{"status":"BAD_REFRESH_TOKEN"}"#, "r1").is_none());
    }
}
