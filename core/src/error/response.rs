//! Reading HubSpot's error answers: v1 and v3 bodies, the list v3 hides inside `message`, and
//! bodies that are not JSON at all.

use serde_json::Value as Json;

use super::{ApiError, ApiErrorKind, FieldError};

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
    pub(crate) fn from_response(
        status: u16,
        header_correlation_id: Option<String>,
        body: &[u8],
    ) -> Self {
        let json: Option<Json> = serde_json::from_slice(body).ok().filter(Json::is_object);
        let empty = Json::Null;
        let j = json.as_ref().unwrap_or(&empty);
        // HubSpot's `message`, or an OAuth token endpoint's RFC 6749 `error_description`.
        let hubspot_message = str_at(j, "message")
            .or_else(|| str_at(j, "error_description"))
            .map(str::to_owned);
        let kind = match kind_of(status) {
            // A 2026-09 validation rule refuses association writes with a 400 and no code; it
            // is a missing permission, and no retry or other input mends it.
            ApiErrorKind::Validation
                if names_association_permission(hubspot_message.as_deref()) =>
            {
                ApiErrorKind::PermissionDenied
            }
            kind => kind,
        };
        let v3_errors = j
            .get("errors")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let errors = match kind {
            ApiErrorKind::Validation => field_errors(j, v3_errors, hubspot_message.as_deref()),
            _ => v1_results(j),
        };
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
        let mut e = ApiError {
            kind,
            status,
            summary: String::new(),
            attempts: 1,
            category: str_at(j, "category")
                .or_else(|| str_at(j, "errorType"))
                // RFC 6749's code (`invalid_grant`), where HubSpot's token endpoint names one.
                .or_else(|| str_at(j, "error").filter(|_| j.get("error_description").is_some()))
                .map(str::to_owned),
            correlation_id: str_at(j, "correlationId")
                .map(str::to_owned)
                .or(header_correlation_id),
            body: None,
            existing_vid,
            conflicting_email: profile.and_then(primary_email),
            errors,
            required_scopes: required_scopes(v3_errors),
            policy: str_at(j, "policyName").map(str::to_owned),
        };
        let said = match (&hubspot_message, &json) {
            // The codes and messages listed say it all; HubSpot's message repeats them.
            _ if kind == ApiErrorKind::Validation && !e.errors.is_empty() => String::new(),
            (Some(m), _) => format!(": {}", snippet(m, 300)),
            (None, None) if !body.is_empty() => {
                format!(": {}", snippet(&String::from_utf8_lossy(body), 200))
            }
            _ => String::new(),
        };
        e.summary = format!("{}{said}", e.plain_summary());
        e.body = json;
        e
    }

    /// A 2xx answer that is not of the shape `what` answers with: a server failure, whose
    /// message says so and may add what it means for the records (`then`).
    pub(crate) fn not_understood(
        status: u16,
        correlation_id: Option<String>,
        body: &[u8],
        what: &str,
        then: &str,
    ) -> Self {
        let mut e = ApiError::from_response(status, correlation_id, body);
        e.kind = ApiErrorKind::Server;
        e.summary = format!(
            "HubSpot's answer to {what} was not understood: {}{then}",
            e.summary
        );
        e
    }

    /// One refused input of a partial answer (a 207, or a 200 with `errors`): its error
    /// (`body`, or the whole answer's) read as the 400 it stands for, with the answer's status.
    pub(crate) fn refused_input(status: u16, correlation_id: Option<String>, body: &[u8]) -> Self {
        let mut e = ApiError::from_response(400, correlation_id, body);
        e.status = status;
        e
    }

    /// A refusal of one record with the other refused values the portal's definitions show
    /// (`more`, in the record's order): HubSpot may name only the first. Each not already
    /// named is added to `errors`, after HubSpot's own, and the message says so.
    pub(crate) fn with_refused(mut self, more: Vec<FieldError>) -> Self {
        let more: Vec<FieldError> = more
            .into_iter()
            .filter(|f| !self.errors.iter().any(|e| e.name == f.name))
            .collect();
        if more.is_empty() {
            return self;
        }
        let lines: Vec<String> = more.iter().map(|f| f.line(120)).collect();
        self.summary.push_str(&format!(
            "; the portal's property definitions also refuse {}",
            lines.join("; ")
        ));
        self.errors.extend(more);
        self
    }

    /// A record of a batch that HubSpot's answer did not mention: a server failure, and it may
    /// have been applied.
    pub(crate) fn unlisted(status: u16, correlation_id: Option<String>) -> Self {
        let mut e = ApiError::from_response(status, correlation_id, b"");
        e.kind = ApiErrorKind::Server;
        e.summary = "HubSpot's answer did not list this record (neither its objectWriteTraceId \
                     nor its email): it may have been applied"
            .into();
        e
    }

    /// The 404 of a date-versioned path: HubSpot does not serve `version` there. Says so,
    /// naming the setting and versions HubSpot publishes (`oldest`, `newest`).
    pub(crate) fn unknown_version(mut self, version: &str, oldest: &str, newest: &str) -> Self {
        self.summary = format!(
            "HubSpot does not serve API version '{version}' here (404): set api_version to a \
             version HubSpot publishes ('{oldest}', '{newest}', ...) or to 'legacy'"
        );
        self
    }

    /// The token endpoint's answer to a refresh: `refresh_token` never shown; a refusal (a
    /// 4xx but 429, whose `status`/`error` field says `said`) is an authentication failure
    /// that stops a run as a refused token does.
    pub(crate) fn refused_refresh(mut self, refresh_token: &str) -> Self {
        let said = self
            .body
            .take()
            .and_then(|b| {
                b.get("status")
                    .or_else(|| b.get("error"))
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "refused".to_owned());
        self.summary = self.summary.replace(refresh_token, "[refresh token]");
        if (400..500).contains(&self.status) && self.status != 429 {
            self.summary = format!(
                "HubSpot's token endpoint refused the OAuth app's refresh token or credentials \
                 ({said}, HTTP {}): {}; the app may need to be installed again",
                self.status, self.summary
            );
            self.kind = ApiErrorKind::Authentication;
            self.status = 401;
        }
        self
    }

    /// The same error, its message followed by `more`.
    pub(crate) fn adding(mut self, more: &str) -> Self {
        self.summary.push_str(more);
        self
    }

    /// What happened, in plain words, from what was read.
    fn plain_summary(&self) -> String {
        let errors = &self.errors;
        match self.kind {
            ApiErrorKind::Validation if !errors.is_empty() => {
                let mut listed: Vec<String> = errors.iter().take(3).map(|e| e.line(120)).collect();
                if errors.len() > 3 {
                    listed.push(format!("and {} more", errors.len() - 3));
                }
                format!("HubSpot rejected property values ({})", listed.join("; "))
            }
            ApiErrorKind::Validation => "HubSpot rejected the request as invalid".to_owned(),
            ApiErrorKind::Authentication => {
                "HubSpot did not accept the access token (expired, revoked or mistyped)".to_owned()
            }
            ApiErrorKind::PermissionDenied if !self.required_scopes.is_empty() => format!(
                "the access token lacks a required scope ({})",
                self.required_scopes.join(", ")
            ),
            ApiErrorKind::PermissionDenied if self.status == 400 => {
                "the user or app behind the access token lacks HubSpot's 'Edit Associations' \
                 permission (a portal's validation rule)"
                    .to_owned()
            }
            ApiErrorKind::PermissionDenied => {
                "the access token is not allowed to do this".to_owned()
            }
            ApiErrorKind::NotFound => "HubSpot found no such endpoint or object".to_owned(),
            ApiErrorKind::Conflict => match self.existing_vid {
                Some(vid) => format!(
                    "another contact (vid {vid}) already has the email address this update sets"
                ),
                None => "another contact already has the email address this update sets".to_owned(),
            },
            ApiErrorKind::RateLimit => match &self.policy {
                Some(p) => format!("HubSpot's rate limit was reached (policy {p})"),
                None => "HubSpot's rate limit was reached".to_owned(),
            },
            ApiErrorKind::Server if (500..600).contains(&self.status) => {
                "HubSpot had a server error".to_owned()
            }
            ApiErrorKind::Server => {
                format!("HubSpot answered with unexpected status {}", self.status)
            }
        }
    }
}

impl FieldError {
    /// `name CODE: message`, the message cut at `most` characters.
    pub(crate) fn line(&self, most: usize) -> String {
        let said = self
            .message
            .as_deref()
            .map(|m| format!(": {}", snippet(m, most)));
        format!(
            "{} {}{}",
            self.name.as_deref().unwrap_or("?"),
            self.code.as_deref().unwrap_or("INVALID"),
            said.unwrap_or_default()
        )
    }
}

/// Whether HubSpot's message is the validation rule's "Missing 'Edit Associations'
/// permission".
fn names_association_permission(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("edit associations") && m.contains("permission")
    })
}

fn kind_of(status: u16) -> ApiErrorKind {
    match status {
        400 => ApiErrorKind::Validation,
        401 => ApiErrorKind::Authentication,
        403 => ApiErrorKind::PermissionDenied,
        404 => ApiErrorKind::NotFound,
        409 => ApiErrorKind::Conflict,
        429 => ApiErrorKind::RateLimit,
        _ => ApiErrorKind::Server,
    }
}

/// v1's `validationResults`: the values it refused.
fn v1_results(j: &Json) -> Vec<FieldError> {
    let Some(results) = j.get("validationResults").and_then(Json::as_array) else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|r| r.get("isValid").and_then(Json::as_bool) != Some(true))
        .map(|r| FieldError {
            name: str_at(r, "name").map(str::to_owned),
            code: str_at(r, "error").map(str::to_owned),
            message: str_at(r, "message").map(str::to_owned),
        })
        .collect()
}

/// The rejected values of a 400, from whichever shape the answer has: v1's
/// `validationResults`, v3's `errors`, or the v1-style list inside `message`.
fn field_errors(j: &Json, v3_errors: &[Json], message: Option<&str>) -> Vec<FieldError> {
    let errors = v1_results(j);
    if !errors.is_empty() {
        return errors;
    }
    let errors: Vec<FieldError> = v3_errors
        .iter()
        .map(|e| {
            let context = e.get("context");
            let name = context
                .and_then(|c| c.get("propertyName"))
                .and_then(|p| p.as_array().and_then(|a| a.first()).or(Some(p)))
                .and_then(Json::as_str)
                .or_else(|| str_at(e, "in"));
            FieldError {
                name: name.map(str::to_owned),
                code: str_at(e, "code").map(str::to_owned),
                message: str_at(e, "message").map(str::to_owned),
            }
        })
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    listed_in_message(message)
}

/// The primary email of a v1 409's `identityProfile` (else its first email).
fn primary_email(profile: &Json) -> Option<String> {
    let ids = profile.get("identity").and_then(Json::as_array)?;
    let emails = || ids.iter().filter(|i| str_at(i, "type") == Some("EMAIL"));
    emails()
        .find(|i| i.get("isPrimary").and_then(Json::as_bool) == Some(true))
        .or_else(|| emails().next())
        .and_then(|i| str_at(i, "value"))
        .map(str::to_owned)
}

/// The scopes a 403 says the token lacks.
fn required_scopes(v3_errors: &[Json]) -> Vec<String> {
    let mut scopes = Vec::new();
    for e in v3_errors {
        for key in ["requiredGranularScopes", "requiredScopes"] {
            if let Some(listed) = e
                .get("context")
                .and_then(|c| c.get(key))
                .and_then(Json::as_array)
            {
                scopes.extend(listed.iter().filter_map(Json::as_str).map(str::to_owned));
            }
        }
    }
    scopes
}
