//! Reading HubSpot's error answers, from bodies seen in the wild and in the docs.

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

#[test]
fn the_association_permission_rule_is_a_permission_refusal() {
    // 2026-09: a 400 with no code, only the message.
    let e = parse(
        400,
        r#"{"status":"error","message":"Missing 'Edit Associations' permission","correlationId":"c-1","category":"VALIDATION_ERROR"}"#,
    );
    assert_eq!(e.kind, ApiErrorKind::PermissionDenied);
    assert_eq!(e.status, 400);
    assert!(
        e.message()
            .contains("lacks HubSpot's 'Edit Associations' permission"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("c-1"));
    // Any other 400 stays a validation error.
    let other = parse(400, r#"{"status":"error","message":"Invalid input JSON"}"#);
    assert_eq!(other.kind, ApiErrorKind::Validation);
}
