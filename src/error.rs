//! The one error type of the core, and how HubSpot's error responses are read into it.
//!
//! ```text
//! Error
//!  ├── InvalidInput   bad arguments, found before anything is sent     (Python: ValueError)
//!  ├── Api            HubSpot answered with an error status            (Python: HubSpotError tree)
//!  ├── Refused        one record HubSpot refuses or would refuse, for  (Python: ValidationError)
//!  │                  a cause an answer named or the portal's property
//!  │                  definitions show
//!  ├── Transport      no usable answer: connect, TLS, reset, timeout   (Python: TransportError)
//!  ├── NotSent        a record the run stopped before sending          (Python: TransportError)
//!  ├── Unanswered     a record in flight when the run stopped          (Python: TransportError)
//!  ├── Interrupted    the caller's hooks stopped a wait                (Python: the signal
//!  │                  handler's own exception, unchanged)
//!  └── Internal       a bug: a panic caught at the boundary            (Python: HubSpotError)
//! ```
//!
//! Every field of HubSpot's error bodies is optional: they vary between APIs and over time.
//! Messages name what happened in plain words and carry the correlation id; they never contain
//! the token, and never the request URL (it holds the contact's email).

use serde_json::Value as Json;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{}", .0.message())]
    Api(Box<ApiError>),
    #[error("{message}")]
    Transport {
        message: String,
        timeout: bool,
        attempts: u32,
    },
    #[error("{message}")]
    Refused {
        message: String,
        /// The status of the answer that named the cause; None when the property definitions
        /// showed it before sending.
        status: Option<u16>,
        correlation_id: Option<String>,
        field: FieldError,
    },
    /// Never sent: the run stopped first (`why` says how).
    #[error("not sent: {why}")]
    NotSent { why: String },
    /// Sent, but the run stopped (`why` says how) before HubSpot answered: it may or may not
    /// have been applied.
    #[error(
        "interrupted before HubSpot answered ({why}); the batch may or may not have been applied"
    )]
    Unanswered { why: String },
    #[error("interrupted")]
    Interrupted,
    #[error("internal error in hubspot_upsert ({0}); please report it")]
    Internal(String),
}

/// Which public exception an error status becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    Validation,
    Authentication,
    PermissionDenied,
    NotFound,
    Conflict,
    RateLimit,
    Server,
}

/// One rejected property value: `validationResults[]` of v1, `errors[]` of v3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldError {
    pub name: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// An error answer from HubSpot, with what could be read from its body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub status: u16,
    /// What happened, in plain words; [`ApiError::message`] adds status and correlation id.
    pub summary: String,
    /// How many attempts were made before this answer was final.
    pub attempts: u32,
    pub category: Option<String>,
    pub correlation_id: Option<String>,
    /// The parsed JSON body, when it was JSON.
    pub body: Option<Json>,
    /// 409: the id of the contact that already owns the address.
    pub existing_vid: Option<i64>,
    /// 409: the address in conflict, when HubSpot names it.
    pub conflicting_email: Option<String>,
    /// 400: the rejected values.
    pub errors: Vec<FieldError>,
    /// 403: the scopes the token lacks.
    pub required_scopes: Vec<String>,
    /// 429: `TEN_SECONDLY_ROLLING`, `DAILY`, `SECONDLY`...
    pub policy: Option<String>,
}

fn str_at<'a>(json: &'a Json, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Json::as_str)
}

/// The integer after `Existing ID:` in a message such as `Contact already exists. Existing ID: 2926551`.
fn existing_id_in(text: &str) -> Option<i64> {
    let rest = &text[text.find("Existing ID:")? + "Existing ID:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The v1-style list that batch answers carry as JSON text inside `message`:
/// `Property values were not valid: [{"isValid":false,"message":...,"error":...,"name":...}]`.
fn listed_in_message(message: Option<&str>) -> Vec<FieldError> {
    let Some(list) = message.and_then(|m| m.find('[').map(|at| &m[at..])) else {
        return Vec::new();
    };
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(list) else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|r| r.get("isValid").and_then(Json::as_bool) != Some(true))
        .filter_map(|r| {
            let e = FieldError {
                name: str_at(r, "name").map(str::to_owned),
                code: str_at(r, "error").map(str::to_owned),
                message: str_at(r, "message").map(str::to_owned),
            };
            (e.name.is_some() || e.code.is_some()).then_some(e)
        })
        .collect()
}

/// One line of at most `max` characters from a non-JSON body (an HTML error page, say).
fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

impl ApiError {
    /// Reads an error answer. `header_correlation_id` is `x-hubspot-correlation-id`; the body's
    /// own `correlationId` wins when both are there.
    pub fn from_response(status: u16, header_correlation_id: Option<String>, body: &[u8]) -> Self {
        let json: Option<Json> = serde_json::from_slice(body).ok().filter(Json::is_object);
        let empty = Json::Null;
        let j = json.as_ref().unwrap_or(&empty);
        let kind = match status {
            400 => ApiErrorKind::Validation,
            401 => ApiErrorKind::Authentication,
            403 => ApiErrorKind::PermissionDenied,
            404 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            429 => ApiErrorKind::RateLimit,
            _ => ApiErrorKind::Server,
        };
        let hubspot_message = str_at(j, "message").map(str::to_owned);
        let category = str_at(j, "category")
            .or_else(|| str_at(j, "errorType"))
            .map(str::to_owned);
        let correlation_id = str_at(j, "correlationId")
            .map(str::to_owned)
            .or(header_correlation_id);

        let mut errors: Vec<FieldError> = Vec::new();
        if let Some(results) = j.get("validationResults").and_then(Json::as_array) {
            for r in results
                .iter()
                .filter(|r| r.get("isValid").and_then(Json::as_bool) != Some(true))
            {
                errors.push(FieldError {
                    name: str_at(r, "name").map(str::to_owned),
                    code: str_at(r, "error").map(str::to_owned),
                    message: str_at(r, "message").map(str::to_owned),
                });
            }
        }
        let v3_errors = j
            .get("errors")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if kind == ApiErrorKind::Validation && errors.is_empty() {
            for e in v3_errors {
                let context = e.get("context");
                let name = context
                    .and_then(|c| c.get("propertyName"))
                    .and_then(|p| p.as_array().and_then(|a| a.first()).or(Some(p)))
                    .and_then(Json::as_str)
                    .or_else(|| str_at(e, "in"));
                errors.push(FieldError {
                    name: name.map(str::to_owned),
                    code: str_at(e, "code").map(str::to_owned),
                    message: str_at(e, "message").map(str::to_owned),
                });
            }
        }

        if kind == ApiErrorKind::Validation && errors.is_empty() {
            errors.extend(listed_in_message(hubspot_message.as_deref()));
        }
        let profile = j.get("identityProfile");
        let existing_vid = profile
            .and_then(|p| p.get("vid"))
            .and_then(Json::as_i64)
            .or_else(|| hubspot_message.as_deref().and_then(existing_id_in))
            .or_else(|| {
                v3_errors
                    .iter()
                    .filter_map(|e| str_at(e, "message"))
                    .find_map(existing_id_in)
            });
        let conflicting_email = profile
            .and_then(|p| p.get("identity"))
            .and_then(Json::as_array)
            .and_then(|ids| {
                let emails = || ids.iter().filter(|i| str_at(i, "type") == Some("EMAIL"));
                emails()
                    .find(|i| i.get("isPrimary").and_then(Json::as_bool) == Some(true))
                    .or_else(|| emails().next())
            })
            .and_then(|i| str_at(i, "value"))
            .map(str::to_owned);

        let mut required_scopes = Vec::new();
        for e in v3_errors {
            for key in ["requiredGranularScopes", "requiredScopes"] {
                if let Some(scopes) = e
                    .get("context")
                    .and_then(|c| c.get(key))
                    .and_then(Json::as_array)
                {
                    required_scopes
                        .extend(scopes.iter().filter_map(Json::as_str).map(str::to_owned));
                }
            }
        }
        let policy = str_at(j, "policyName").map(str::to_owned);

        let summary = match kind {
            ApiErrorKind::Validation if !errors.is_empty() => {
                let mut listed: Vec<String> = errors
                    .iter()
                    .take(3)
                    .map(|e| {
                        let said = e
                            .message
                            .as_deref()
                            .map(|m| format!(": {}", snippet(m, 120)));
                        format!(
                            "{} {}{}",
                            e.name.as_deref().unwrap_or("?"),
                            e.code.as_deref().unwrap_or("INVALID"),
                            said.unwrap_or_default()
                        )
                    })
                    .collect();
                if errors.len() > 3 {
                    listed.push(format!("and {} more", errors.len() - 3));
                }
                format!("HubSpot rejected property values ({})", listed.join("; "))
            }
            ApiErrorKind::Validation => "HubSpot rejected the request as invalid".to_owned(),
            ApiErrorKind::Authentication => {
                "HubSpot did not accept the access token (expired, revoked or mistyped)".to_owned()
            }
            ApiErrorKind::PermissionDenied if !required_scopes.is_empty() => format!(
                "the access token lacks a required scope ({})",
                required_scopes.join(", ")
            ),
            ApiErrorKind::PermissionDenied => {
                "the access token is not allowed to do this".to_owned()
            }
            ApiErrorKind::NotFound => "HubSpot found no such endpoint or object".to_owned(),
            ApiErrorKind::Conflict => match existing_vid {
                Some(vid) => format!(
                    "another contact (vid {vid}) already has the email address this update sets"
                ),
                None => "another contact already has the email address this update sets".to_owned(),
            },
            ApiErrorKind::RateLimit => match &policy {
                Some(p) => format!("HubSpot's rate limit was reached (policy {p})"),
                None => "HubSpot's rate limit was reached".to_owned(),
            },
            ApiErrorKind::Server if (500..600).contains(&status) => {
                "HubSpot had a server error".to_owned()
            }
            ApiErrorKind::Server => format!("HubSpot answered with unexpected status {status}"),
        };
        let said = match (&hubspot_message, &json) {
            // The codes and messages listed say it all; HubSpot's message repeats them.
            _ if kind == ApiErrorKind::Validation && !errors.is_empty() => String::new(),
            (Some(m), _) => format!(": {}", snippet(m, 300)),
            (None, None) if !body.is_empty() => {
                format!(": {}", snippet(&String::from_utf8_lossy(body), 200))
            }
            _ => String::new(),
        };
        ApiError {
            kind,
            status,
            summary: format!("{summary}{said}"),
            attempts: 1,
            category,
            correlation_id,
            body: json,
            existing_vid,
            conflicting_email,
            errors,
            required_scopes,
            policy,
        }
    }
}

impl ApiError {
    /// The full message: what happened, then status, category and correlation id.
    pub fn message(&self) -> String {
        let mut tail = vec![format!("HTTP {}", self.status)];
        if let Some(c) = &self.category {
            tail.push(c.clone());
        }
        tail.push(format!(
            "correlation id {}",
            self.correlation_id.as_deref().unwrap_or("none")
        ));
        format!("{} [{}]", self.summary, tail.join(", "))
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> ApiError {
        ApiError::from_response(status, Some("hdr-corr".into()), body.as_bytes())
    }

    #[test]
    fn conflict_older_format() {
        let e = parse(
            409,
            r#"{"status":"error","message":"Contact already exists","error":"CONTACT_EXISTS",
            "identityProfile":{"vid":12053574,"identity":[{"value":"x@example.net","type":"EMAIL",
            "timestamp":1556981077259,"isPrimary":true},{"value":"abc","type":"LEAD_GUID"}],
            "linkedVid":[],"isContact":true,"savedAtTimestamp":1556981077274},
            "correlationId":"c-409","requestId":"r"}"#,
        );
        assert_eq!(e.kind, ApiErrorKind::Conflict);
        assert_eq!(e.existing_vid, Some(12053574));
        assert_eq!(e.conflicting_email.as_deref(), Some("x@example.net"));
        assert_eq!(e.correlation_id.as_deref(), Some("c-409"));
        assert!(e.message().contains("vid 12053574"), "{}", e.message());
        assert!(
            e.message().contains("correlation id c-409"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn conflict_newer_format_without_profile_reads_existing_id_text() {
        let e = parse(
            409,
            r#"{"status":"error","message":"Contact already exists. Existing ID: 2926551",
            "correlationId":"c","category":"OBJECT_ALREADY_EXISTS",
            "errors":[{"message":"A contact with email x already exists. Existing ID: 2926551","in":"email"}]}"#,
        );
        assert_eq!(e.existing_vid, Some(2926551));
        assert_eq!(e.category.as_deref(), Some("OBJECT_ALREADY_EXISTS"));
        let only_errors = parse(409, r#"{"errors":[{"message":"Existing ID: 77"}]}"#);
        assert_eq!(only_errors.existing_vid, Some(77));
        assert_eq!(only_errors.correlation_id.as_deref(), Some("hdr-corr"));
    }

    #[test]
    fn validation_v1_and_v3() {
        let v1 = parse(
            400,
            r#"{"status":"error","message":"Property values were not valid","correlationId":"c",
            "validationResults":[{"isValid":false,"message":"x","error":"PROPERTY_DOESNT_EXIST","name":"shoe"},
            {"isValid":false,"message":"y","error":"INVALID_EMAIL","name":"email"}]}"#,
        );
        assert_eq!(v1.errors.len(), 2);
        assert_eq!(v1.errors[0].name.as_deref(), Some("shoe"));
        assert_eq!(v1.errors[1].code.as_deref(), Some("INVALID_EMAIL"));
        assert!(
            v1.message()
                .contains("(shoe PROPERTY_DOESNT_EXIST: x; email INVALID_EMAIL: y)"),
            "{}",
            v1.message()
        );
        let v3 = parse(
            400,
            r#"{"status":"error","message":"Property values were not valid: [...]","correlationId":"c",
            "category":"VALIDATION_ERROR","errors":[{"message":"m","code":"PROPERTY_DOESNT_EXIST",
            "context":{"propertyName":["x"]}}]}"#,
        );
        assert_eq!(
            v3.errors,
            vec![FieldError {
                name: Some("x".into()),
                code: Some("PROPERTY_DOESNT_EXIST".into()),
                message: Some("m".into())
            }]
        );
        let malformed = parse(
            400,
            r#"{"status":"error","message":"Invalid input JSON on line 1, column 18"}"#,
        );
        assert!(malformed.errors.is_empty());
        assert!(malformed.message().contains("Invalid input JSON"));
    }

    #[test]
    fn the_list_inside_a_batch_message_is_read() {
        let e = parse(
            400,
            r#"{"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"bogus was not one of the allowed options\",\"error\":\"INVALID_OPTION\",\"name\":\"lifecyclestage\"}]"}"#,
        );
        assert_eq!(
            e.errors,
            vec![FieldError {
                name: Some("lifecyclestage".into()),
                code: Some("INVALID_OPTION".into()),
                message: Some("bogus was not one of the allowed options".into()),
            }]
        );
        let plain = parse(400, r#"{"message":"Invalid input JSON [line 1]"}"#);
        assert!(plain.errors.is_empty());
    }

    #[test]
    fn scopes_auth_rate_limit() {
        let e = parse(
            403,
            r#"{"category":"MISSING_SCOPES","errors":[{"message":"m","context":{"requiredGranularScopes":["crm.objects.contacts.write"]}}]}"#,
        );
        assert_eq!(e.required_scopes, ["crm.objects.contacts.write"]);
        let old = parse(
            403,
            r#"{"errors":[{"context":{"requiredScopes":["contacts"]}}]}"#,
        );
        assert_eq!(old.required_scopes, ["contacts"]);
        let auth = parse(
            401,
            r#"{"category":"EXPIRED_AUTHENTICATION","message":"expired"}"#,
        );
        assert_eq!(auth.kind, ApiErrorKind::Authentication);
        assert_eq!(auth.category.as_deref(), Some("EXPIRED_AUTHENTICATION"));
        let rl = parse(
            429,
            r#"{"errorType":"RATE_LIMIT","policyName":"DAILY","message":"m"}"#,
        );
        assert_eq!(rl.policy.as_deref(), Some("DAILY"));
        assert_eq!(rl.category.as_deref(), Some("RATE_LIMIT"));
    }

    #[test]
    fn non_json_bodies_become_a_short_line() {
        let page = format!(
            "<html>\n<body>502 Bad Gateway{}</body></html>",
            " pad".repeat(200)
        );
        let e = parse(502, &page);
        assert_eq!(e.kind, ApiErrorKind::Server);
        assert!(e.body.is_none());
        assert!(e
            .message()
            .starts_with("HubSpot had a server error: <html> <body>502 Bad Gateway"));
        assert!(e.message().len() < 400, "{}", e.message());
        assert!(
            e.message().ends_with("[HTTP 502, correlation id hdr-corr]"),
            "{}",
            e.message()
        );
        let odd = parse(302, "");
        assert!(odd
            .message()
            .starts_with("HubSpot answered with unexpected status 302 [HTTP 302"));
    }
}
