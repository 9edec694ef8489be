//! The request path against a scripted HubSpot, on tokio's paused clock: what is retried and
//! how long it waits, what is final, what the error says. No sockets; the waits take no real
//! time, and the clock shows how long they were.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use super::{Client, ClientConfig};
use crate::api::Landed;
use crate::context::{Level, Log};
use crate::error::{Error, FailureKind, Result};
use crate::pacing::RateHeaders;
use crate::retry::RetryPolicy;
use crate::transport::{Answer, Credential, Exchange};

/// Answers each attempt with the next scripted outcome; counts the attempts and keeps what
/// each carried: `Bearer <token>`, or `form <url>`.
struct Script {
    outcomes: Mutex<VecDeque<Result<Answer>>>,
    attempts: Mutex<u32>,
    carried: Mutex<Vec<String>>,
}

impl Script {
    fn new(outcomes: Vec<Result<Answer>>) -> Self {
        Script {
            outcomes: Mutex::new(outcomes.into()),
            attempts: Mutex::new(0),
            carried: Mutex::default(),
        }
    }

    fn attempts(&self) -> u32 {
        *self.attempts.lock().unwrap()
    }
}

impl Exchange for Script {
    fn exchange<'a>(
        &'a self,
        _: reqwest::Method,
        url: &'a str,
        _: Option<Vec<u8>>,
        credential: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>> {
        *self.attempts.lock().unwrap() += 1;
        self.carried.lock().unwrap().push(match credential {
            Credential::Bearer(token) => format!("Bearer {token}"),
            Credential::Form(_) => format!("form {}", url.rsplit('/').next().unwrap_or("")),
        });
        let next = self.outcomes.lock().unwrap().pop_front();
        Box::pin(async move { next.expect("the script has an answer for every attempt") })
    }
}

fn answer(status: u16, body: &str) -> Result<Answer> {
    Ok(Answer {
        status,
        correlation_id: Some(format!("corr-{status}")),
        retry_after: None,
        rate: RateHeaders::default(),
        body: body.as_bytes().to_vec(),
    })
}

fn after(status: u16, seconds: u64) -> Result<Answer> {
    let mut a = answer(status, r#"{"status":"error","message":"later"}"#)?;
    a.retry_after = Some(Duration::from_secs(seconds));
    Ok(a)
}

fn cut(kind: FailureKind) -> Result<Answer> {
    Err(Error::Transport {
        message: format!("{kind:?}"),
        kind,
        attempts: 1,
    })
}

/// Logs nothing and never stops a call.
pub(super) struct Quiet;
impl Log for Quiet {
    fn enabled(&self, _: Level) -> bool {
        false
    }
    fn log(&self, _: Level, _: &str) {}
}
impl crate::context::Hooks for Quiet {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

fn client(retry: RetryPolicy) -> Client {
    Client::new(ClientConfig { retry, ..config() }).unwrap()
}

/// Sends one request through the script; the outcome and the time it took on the paused clock.
async fn go(client: &Client, script: &Script) -> (Result<Vec<u8>>, Duration) {
    let started = tokio::time::Instant::now();
    let url = "http://127.0.0.1:9/crm/v3/objects/contacts/batch/upsert";
    let outcome = client
        .request(script, reqwest::Method::POST, url, None, &Quiet, None)
        .await
        .map(|a| a.body);
    (outcome, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_a_growing_backoff() {
    let c = client(RetryPolicy::default());
    let script = Script::new(vec![
        answer(503, "{}"),
        answer(502, "{}"),
        answer(200, "ok"),
    ]);
    let (outcome, took) = go(&c, &script).await;
    assert_eq!(outcome.unwrap(), b"ok");
    assert_eq!(script.attempts(), 3);
    // Full jitter below 0.5 s, then below 1 s.
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for() {
    let c = client(RetryPolicy::default());
    let script = Script::new(vec![after(429, 3), answer(200, "ok")]);
    let (outcome, took) = go(&c, &script).await;
    assert!(outcome.is_ok());
    // Retry-After, plus up to half of it (at most 1 s) of jitter.
    assert!(
        took >= Duration::from_secs(3) && took <= Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_final() {
    for status in [400, 401, 403, 404, 409] {
        let c = client(RetryPolicy::default());
        let script = Script::new(vec![answer(status, r#"{"message":"no"}"#)]);
        let (outcome, _) = go(&c, &script).await;
        match outcome {
            Err(Error::Api(e)) => {
                assert_eq!((e.status, e.attempts), (status, 1));
                assert_eq!(
                    e.correlation_id.as_deref(),
                    Some(&*format!("corr-{status}"))
                );
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(script.attempts(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn transient_transport_failures_are_retried_and_others_are_not() {
    for kind in [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Reset,
        FailureKind::Body,
    ] {
        let c = client(RetryPolicy::default());
        let script = Script::new(vec![cut(kind), answer(200, "ok")]);
        assert!(go(&c, &script).await.0.is_ok(), "{kind:?}");
        assert_eq!(script.attempts(), 2, "{kind:?}");
    }
    for kind in [FailureKind::Tls, FailureKind::Oversize, FailureKind::Config] {
        let c = client(RetryPolicy::default());
        let script = Script::new(vec![cut(kind)]);
        match go(&c, &script).await.0 {
            Err(Error::Transport {
                kind: k, attempts, ..
            }) => assert_eq!((k, attempts), (kind, 1)),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn giving_up_says_how_many_attempts() {
    let retry = RetryPolicy {
        max_retries: 2,
        ..RetryPolicy::default()
    };
    let c = client(retry);
    let script = Script::new(vec![
        answer(503, "{}"),
        answer(503, "{}"),
        answer(503, "{}"),
    ]);
    match go(&c, &script).await.0 {
        Err(Error::Api(e)) => {
            assert_eq!((e.status, e.attempts), (503, 3));
            assert!(
                e.message().contains("gave up after 3 attempts"),
                "{}",
                e.message()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_daily_429_is_final_and_a_retry_after_past_the_deadline_fails_at_once() {
    let c = client(RetryPolicy::default());
    let daily = r#"{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}"#;
    let script = Script::new(vec![answer(429, daily)]);
    assert!(matches!(go(&c, &script).await.0, Err(Error::Api(e)) if e.attempts == 1));
    let script = Script::new(vec![after(503, 3600)]);
    let (outcome, took) = go(&c, &script).await;
    assert!(matches!(outcome, Err(Error::Api(e)) if e.status == 503));
    assert_eq!(script.attempts(), 1);
    assert!(took < Duration::from_millis(10), "{took:?}");
}

fn client_on(version: Option<&str>) -> Client {
    Client::new(ClientConfig {
        api_version: version.map(|v| crate::api::ApiVersion::parse(v).unwrap()),
        ..config()
    })
    .unwrap()
}

pub(super) fn config() -> ClientConfig {
    ClientConfig {
        auth: crate::auth::AuthConfig::Token("pat-test".into()),
        base_url: "http://127.0.0.1:9".into(),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        retry: RetryPolicy::default(),
        rate_limit: None,
        ca_bundle: None,
        api_version: None,
    }
}

async fn upsert(c: &Client, script: &Script, properties: &[(&str, &str)]) -> Result<Landed> {
    let properties: Vec<(String, String)> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c.create_or_update_on(
        script,
        &Default::default(),
        "ada@example.com",
        "email",
        &properties,
        &Quiet,
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_single_upsert_reads_v1_and_batch_answers() {
    let script = Script::new(vec![answer(200, r#"{"vid": 3234574, "isNew": false}"#)]);
    let landed = upsert(&client_on(Some("legacy")), &script, &[])
        .await
        .unwrap();
    assert_eq!((landed.vid, landed.is_new), (3234574, false));
    let batch = r#"{"status":"COMPLETE","results":[{"id":"1001","new":true,"properties":{}}]}"#;
    for version in [None, Some("2026-09")] {
        let script = Script::new(vec![answer(200, batch)]);
        let landed = upsert(&client_on(version), &script, &[]).await.unwrap();
        assert_eq!((landed.vid, landed.is_new), (1001, true));
    }
}

#[tokio::test(start_paused = true)]
async fn a_partial_answer_to_a_single_upsert_is_a_refusal_with_hubspot_s_code() {
    let partial = r#"{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error",
        "category":"VALIDATION_ERROR","message":"Property values were not valid",
        "context":{"objectWriteTraceId":["0"]},
        "errors":[{"code":"INVALID_OPTION","message":"bogus was not one of the allowed options",
        "context":{"propertyName":["lifecyclestage"]}}]}]}"#;
    for status in [200, 207] {
        let script = Script::new(vec![answer(status, partial)]);
        match upsert(
            &client_on(Some("2026-09")),
            &script,
            &[("lifecyclestage", "bogus")],
        )
        .await
        {
            Err(Error::Api(e)) => {
                assert_eq!(e.status, status);
                assert_eq!(e.errors[0].code.as_deref(), Some("INVALID_OPTION"));
                assert_eq!(e.errors[0].name.as_deref(), Some("lifecyclestage"));
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_404_on_a_date_version_names_the_setting_and_a_409_the_address() {
    let script = Script::new(vec![answer(404, r#"{"message":"resource not found"}"#)]);
    match upsert(&client_on(Some("2026-09")), &script, &[]).await {
        Err(Error::Api(e)) => assert!(e.summary.contains("does not serve API version '2026-09'")),
        other => panic!("{other:?}"),
    }
    let conflict = r#"{"status":"error","message":"Contact already exists. Existing ID: 77"}"#;
    let script = Script::new(vec![answer(409, conflict)]);
    match upsert(
        &client_on(Some("legacy")),
        &script,
        &[("email", "grace@example.com")],
    )
    .await
    {
        Err(Error::Api(e)) => {
            assert_eq!(e.existing_vid, Some(77));
            assert_eq!(e.conflicting_email.as_deref(), Some("grace@example.com"));
            assert_eq!(script.attempts(), 1);
        }
        other => panic!("{other:?}"),
    }
}

fn oauth_client() -> Client {
    Client::new(ClientConfig {
        auth: crate::auth::AuthConfig::OAuth {
            app: crate::auth::OAuthApp {
                client_id: "app".into(),
                client_secret: "app-secret".into(),
                refresh_token: "refresh-1".into(),
            },
            on_token: None,
        },
        ..config()
    })
    .unwrap()
}

fn tokens(access: &str, seconds: u64) -> Result<Answer> {
    answer(
        200,
        &format!(
            r#"{{"access_token":"{access}","refresh_token":"refresh-1","expires_in":{seconds}}}"#
        ),
    )
}

#[tokio::test(start_paused = true)]
async fn an_oauth_token_is_got_first_refreshed_ahead_and_once_after_a_401() {
    let c = oauth_client();
    let ok = || {
        answer(
            200,
            r#"{"results":[{"id":"1","new":false,"properties":{}}]}"#,
        )
    };
    let expired = r#"{"status":"error","message":"expired","category":"EXPIRED_AUTHENTICATION"}"#;
    let script = Script::new(vec![
        tokens("a1", 20),
        ok(),
        // 18 s later (due at 20 - 2): refreshed before the upsert, none spent on a1.
        tokens("a2", 20),
        ok(),
        // HubSpot revokes a2 early: one refresh, the upsert sent again.
        answer(401, expired),
        tokens("a3", 20),
        ok(),
        // Refused again at once: final, no second refresh for the same call.
        answer(401, expired),
        tokens("a4", 20),
        answer(401, expired),
    ]);
    upsert(&c, &script, &[]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(18)).await;
    upsert(&c, &script, &[]).await.unwrap();
    upsert(&c, &script, &[]).await.unwrap();
    let refused = upsert(&c, &script, &[]).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Api(e) if e.status == 401),
        "{refused}"
    );
    assert_eq!(
        *script.carried.lock().unwrap(),
        [
            "form token",
            "Bearer a1",
            "form token",
            "Bearer a2",
            "Bearer a2",
            "form token",
            "Bearer a3",
            "Bearer a3",
            "form token",
            "Bearer a4",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_token_endpoint_s_429_is_waited_out_and_its_rfc_6749_refusal_read() {
    let c = oauth_client();
    let ok = || {
        answer(
            200,
            r#"{"results":[{"id":"1","new":true,"properties":{}}]}"#,
        )
    };
    let limited = r#"{"status":"error","message":"You have reached your ten-secondly limit.",
        "errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#;
    let mut waited = answer(429, limited).unwrap();
    waited.retry_after = Some(Duration::from_secs(2));
    let script = Script::new(vec![Ok(waited), tokens("a1", 1800), ok()]);
    let started = tokio::time::Instant::now();
    upsert(&c, &script, &[]).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After kept"
    );
    assert_eq!(
        *script.carried.lock().unwrap(),
        ["form token", "form token", "Bearer a1"]
    );

    let c = oauth_client();
    let grant =
        r#"{"error":"invalid_grant","error_description":"refresh token refresh-1 revoked"}"#;
    let script = Script::new(vec![answer(400, grant)]);
    let refused = upsert(&c, &script, &[]).await.unwrap_err();
    let Error::Api(e) = &refused else {
        panic!("{refused}")
    };
    assert_eq!(e.kind, crate::error::ApiErrorKind::Authentication);
    assert_eq!(e.category.as_deref(), Some("invalid_grant"));
    let text = refused.to_string();
    assert!(
        text.contains("invalid_grant") && text.contains("revoked") && !text.contains("refresh-1"),
        "{text}"
    );
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_token_is_an_authentication_failure_naming_no_secret() {
    let c = oauth_client();
    let bad =
        r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token refresh-1"}"#;
    let script = Script::new(vec![answer(400, bad)]);
    let refused = upsert(&c, &script, &[]).await.unwrap_err();
    let Error::Api(e) = &refused else {
        panic!("{refused}")
    };
    assert_eq!(e.kind, crate::error::ApiErrorKind::Authentication);
    let text = refused.to_string();
    assert!(
        text.contains("BAD_REFRESH_TOKEN") && !text.contains("refresh-1"),
        "{text}"
    );
    assert_eq!(
        script.attempts(),
        1,
        "not retried, and nothing sent without a token"
    );
}
