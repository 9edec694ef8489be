//! The driver and planner together, against a scripted transport: no sockets, no clock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::*;
use crate::error::{ApiError, Raised, Stop};
use crate::planner::{Fill, Matching, Mode};
use crate::schema::Schema;
use crate::state::{Accepted, Held, Ledger, Stateless};

/// Hooks that never stop and log nothing.
struct Quiet;
impl crate::context::Log for Quiet {
    fn enabled(&self, _: Level) -> bool {
        false
    }
    fn log(&self, _: Level, _: &str) {}
}
impl Hooks for Quiet {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

struct Records(std::vec::IntoIter<(usize, BatchInput)>);
impl Source for Records {
    fn read(&mut self, max: usize) -> Chunk {
        let records: Vec<_> = self.0.by_ref().take(max).collect();
        Chunk {
            done: records.len() < max,
            records,
            failed: None,
        }
    }
}

/// `(vid, is_new)`, or `(code, message)`.
type Seen = std::result::Result<(i64, bool), (Option<String>, String)>;

#[derive(Default)]
struct Collect(HashMap<usize, Seen>);
impl Sink for Collect {
    fn take(&mut self, outcomes: Vec<Outcome>) -> Result<()> {
        for o in outcomes {
            let r = match o.fate {
                Fate::Landed(l) => Ok((l.vid, l.is_new)),
                Fate::Skipped(skip) => Err((Some(skip.code.to_owned()), skip.reason.to_owned())),
                Fate::Planned { is_new } => Err((Some(format!("PLANNED new={is_new}")), "".into())),
                Fate::Unchanged { object_id } => {
                    Err((Some("UNCHANGED".into()), object_id.to_string()))
                }
                Fate::Failed(e) => {
                    let code = match &e {
                        Error::Refused { field, .. } => field.code.clone(),
                        Error::Api(api) => api.errors.first().and_then(|f| f.code.clone()),
                        _ => None,
                    };
                    Err((code, e.to_string()))
                }
            };
            assert!(
                self.0.insert(o.index, r).is_none(),
                "two outcomes for {}",
                o.index
            );
        }
        Ok(())
    }
}

/// A HubSpot in a function: it answers each request at once, naming only the first bad
/// input of a rejected batch, and echoing only `objectWriteTraceId`.
/// Why the portal refuses `(email, property, value)`: HubSpot's code and message.
type Portal = Box<dyn Fn(&str, &str, &str) -> Option<(&'static str, String)>>;

struct Scripted {
    portal: Portal,
    stored: RefCell<HashMap<String, i64>>,
    /// The values of each stored contact.
    values: RefCell<HashMap<i64, serde_json::Map<String, Json>>>,
    requests: RefCell<Vec<Json>>,
    /// A property an admin's rule requires on new contacts (2026-09).
    required_on_create: Option<&'static str>,
}

impl Scripted {
    fn new(portal: impl Fn(&str, &str, &str) -> Option<(&'static str, String)> + 'static) -> Self {
        Scripted {
            portal: Box::new(portal),
            stored: RefCell::default(),
            values: RefCell::default(),
            requests: RefCell::default(),
            required_on_create: None,
        }
    }

    /// Refuses a new contact without `name`, naming only the first such input.
    fn requiring(mut self, name: &'static str) -> Self {
        self.required_on_create = Some(name);
        self
    }

    /// A contact that exists before the run, with these values.
    fn seed(&self, email: &str, values: &[(&str, &str)]) -> i64 {
        let mut stored = self.stored.borrow_mut();
        let vid = 1000 + stored.len() as i64;
        stored.insert(email.to_lowercase(), vid);
        let values = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Json::String((*v).to_owned())))
            .collect();
        self.values.borrow_mut().insert(vid, values);
        vid
    }

    /// A batch read: the contacts stored under the ids asked for (HubSpot's own ids when
    /// no `idProperty` is given), with the properties asked for (null when empty).
    fn read(&self, body: &[u8]) -> Result<Reply> {
        let request: Json = serde_json::from_slice(body).unwrap();
        self.requests.borrow_mut().push(request.clone());
        let stored = self.stored.borrow();
        let values = self.values.borrow();
        let by_object_id = request.get("idProperty").is_none();
        let results: Vec<Json> = request["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| {
                let id = i["id"].as_str().unwrap();
                let vid = match by_object_id {
                    true => id.parse().ok().filter(|v| values.contains_key(v))?,
                    false => *stored.get(&id.to_lowercase())?,
                };
                let mut properties = serde_json::Map::new();
                for name in request["properties"].as_array().unwrap() {
                    let name = name.as_str().unwrap();
                    let value = values.get(&vid).and_then(|v| v.get(name)).cloned();
                    properties.insert(name.to_owned(), value.unwrap_or(Json::Null));
                }
                if !by_object_id {
                    properties.insert("email".into(), Json::String(id.to_owned()));
                }
                Some(json!({"id": vid.to_string(), "properties": properties}))
            })
            .collect();
        complete(results)
    }

    /// A batch update by HubSpot's ids: an id that is not stored is an error of its input.
    fn update(&self, body: &[u8]) -> Result<Reply> {
        let request: Json = serde_json::from_slice(body).unwrap();
        self.requests.borrow_mut().push(request.clone());
        assert!(request["inputs"][0].get("idProperty").is_none());
        let mut values = self.values.borrow_mut();
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for input in request["inputs"].as_array().unwrap() {
            let vid: i64 = input["id"].as_str().unwrap().parse().unwrap();
            let trace = &input["objectWriteTraceId"];
            let Some(stored) = values.get_mut(&vid) else {
                errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                    "message": "Object not found", "context": {"objectWriteTraceId": [trace]}}));
                continue;
            };
            for (k, v) in input["properties"].as_object().unwrap() {
                stored.insert(k.clone(), v.clone());
            }
            results.push(
                json!({"id": vid.to_string(), "properties": {}, "objectWriteTraceId": trace}),
            );
        }
        Ok(Reply {
            status: 200,
            correlation_id: None,
            body: json!({"status": "COMPLETE", "results": results, "errors": errors})
                .to_string()
                .into_bytes(),
        })
    }

    fn answer(&self, body: &[u8]) -> Result<Reply> {
        let request: Json = serde_json::from_slice(body).unwrap();
        self.requests.borrow_mut().push(request.clone());
        let inputs = request["inputs"].as_array().unwrap();
        for input in inputs {
            let email = input["id"].as_str().unwrap();
            let new = !self.stored.borrow().contains_key(&email.to_lowercase());
            if let Some(name) = self
                .required_on_create
                .filter(|n| new && input["properties"].get(n).is_none())
            {
                let body = json!({"status": "error", "category": "VALIDATION_ERROR",
                    "message": "Property values were not valid",
                    "errors": [{"code": "MISSING_REQUIRED_PROPERTY",
                        "message": format!("Property '{name}' is required"),
                        "context": {"propertyName": [name]}}]});
                let e =
                    ApiError::from_response(400, Some("c-400".into()), body.to_string().as_bytes());
                return Err(Error::from(e));
            }
            let id = ("email".to_owned(), Json::String(email.to_owned()));
            let properties = input["properties"].as_object().unwrap();
            for (name, value) in std::iter::once((&id.0, &id.1)).chain(properties) {
                if let Some((code, message)) = (self.portal)(email, name, value.as_str().unwrap()) {
                    let body = json!({"status": "error", "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid",
                        "errors": [{"code": code, "message": message, "context": {"propertyName": [name]}}]});
                    let e = ApiError::from_response(
                        400,
                        Some("c-400".into()),
                        body.to_string().as_bytes(),
                    );
                    return Err(Error::from(e));
                }
            }
        }
        let mut stored = self.stored.borrow_mut();
        let results: Vec<Json> = inputs
            .iter()
            .map(|input| {
                let key = input["id"].as_str().unwrap().to_lowercase();
                let n = stored.len() as i64;
                let is_new = !stored.contains_key(&key);
                let vid = *stored.entry(key).or_insert(1000 + n);
                let mut values = self.values.borrow_mut();
                let kept = values.entry(vid).or_default();
                for (k, v) in input["properties"].as_object().unwrap() {
                    kept.insert(k.clone(), v.clone());
                }
                json!({"id": vid.to_string(), "new": is_new, "properties": {},
                    "objectWriteTraceId": input["objectWriteTraceId"]})
            })
            .rev()
            .collect();
        complete(results)
    }
}

/// A 200 batch answer with these results.
fn complete(results: Vec<Json>) -> Result<Reply> {
    Ok(Reply {
        status: 200,
        correlation_id: None,
        body: json!({"status": "COMPLETE", "results": results})
            .to_string()
            .into_bytes(),
    })
}

impl Sender for Scripted {
    fn try_reserve(&self) -> std::result::Result<Instant, NoRoom> {
        Ok(Instant::now())
    }
    fn send(&self, id: BatchId, call: Call, _: Instant, done: Done) {
        let answer = match call {
            Call::Upsert(body) => self.answer(&body),
            Call::Read(body) => self.read(&body),
            Call::Update(body) => self.update(&body),
        };
        done.send((id, answer)).unwrap();
    }
    fn cancel_all(&self) {}
    fn patience(&self) -> Duration {
        Duration::from_secs(1)
    }
}

fn records(n: usize, f: impl Fn(usize) -> Vec<(&'static str, String)>) -> Vec<(usize, BatchInput)> {
    (0..n)
        .map(|i| {
            let properties = f(i).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            (
                i,
                BatchInput {
                    id: format!("p{i}@example.com"),
                    properties,
                    links: Vec::new(),
                },
            )
        })
        .collect()
}

fn go(planner: &mut Planner, portal: &Scripted, input: Vec<(usize, BatchInput)>) -> Collect {
    let mut sink = Collect::default();
    run(
        planner,
        &mut Records(input.into_iter()),
        portal,
        &mut sink,
        &mut Stateless,
        &Quiet,
    )
    .unwrap();
    sink
}

fn lacks(property: &'static str) -> impl Fn(&str, &str, &str) -> Option<(&'static str, String)> {
    move |_, name, _| {
        (name == property).then(|| {
            (
                "PROPERTY_DOESNT_EXIST",
                format!("Property \"{name}\" does not exist"),
            )
        })
    }
}

#[test]
fn a_column_the_portal_lacks_costs_one_request() {
    let portal = Scripted::new(lacks("shoe_size"));
    let mut planner = Planner::new(None, Matching::default(), 64);
    let out = go(
        &mut planner,
        &portal,
        records(10_000, |i| vec![("shoe_size", i.to_string())]),
    );
    assert_eq!(portal.requests.borrow().len(), 1);
    assert_eq!(out.0.len(), 10_000);
    assert!(out
        .0
        .values()
        .all(|r| matches!(r, Err((Some(c), _)) if c == "PROPERTY_DOESNT_EXIST")));
    let (_, message) = out.0[&9_999].as_ref().unwrap_err();
    assert!(
        message.contains("shoe_size PROPERTY_DOESNT_EXIST"),
        "{message}"
    );
    assert!(message.contains("not sent"), "{message}");
}

#[test]
fn a_bad_enumeration_value_is_learned_once() {
    let portal = Scripted::new(|_, name, value| {
        (name == "lifecyclestage" && value != "lead").then(|| {
            (
                "INVALID_OPTION",
                format!("{value} was not one of the allowed options: [lead, customer]"),
            )
        })
    });
    let mut planner = Planner::new(None, Matching::default(), 64);
    let stage = |i: usize| if i % 10 == 3 { "bogus" } else { "lead" };
    let out = go(
        &mut planner,
        &portal,
        records(10_000, |i| vec![("lifecyclestage", stage(i).into())]),
    );
    let good = 9_000;
    let requests = portal.requests.borrow().len();
    assert!(requests <= good / 100 + 7, "{requests} requests");
    for (i, r) in &out.0 {
        match stage(*i) {
            "lead" => assert!(r.is_ok(), "{i}: {r:?}"),
            _ => assert!(
                matches!(r, Err((Some(c), m)) if c == "INVALID_OPTION" && m.contains("lifecyclestage")),
                "{i}: {r:?}"
            ),
        }
    }
    assert_eq!(out.0.len(), 10_000);
}

#[test]
fn refused_addresses_cost_about_one_request_each() {
    let portal = Scripted::new(|email, name, _| {
        (name == "email" && email.ends_with(".ik"))
            .then(|| ("INVALID_EMAIL", format!("Email address {email} is invalid")))
    });
    let mut planner = Planner::new(None, Matching::default(), 64);
    let mut input = records(10_000, |_| vec![]);
    let bad: Vec<usize> = (0..10_000).filter(|i| i % 100 == 42).collect();
    for &i in &bad {
        input[i].1.id = format!("p{i}@example.ik");
    }
    let out = go(&mut planner, &portal, input);
    let good = 10_000 - bad.len();
    let requests = portal.requests.borrow().len();
    assert!(
        requests <= good.div_ceil(100) + 2 * bad.len() + 4,
        "{requests} requests"
    );
    for i in &bad {
        assert!(matches!(&out.0[i], Err((Some(c), _)) if c == "INVALID_EMAIL"));
    }
    assert_eq!(out.0.values().filter(|r| r.is_ok()).count(), good);
}

#[test]
fn the_definitions_refuse_before_sending() {
    let schema = Schema::from_json(
        br#"{"results":[{"name":"email","type":"string"},{"name":"firstname","type":"string"},
        {"name":"lifecyclestage","type":"enumeration","options":[{"value":"lead"}]}]}"#,
    )
    .unwrap();
    let portal = Scripted::new(|_, _, _| None);
    let mut planner = Planner::new(Some(Arc::new(schema)), Matching::default(), 64);
    let out = go(
        &mut planner,
        &portal,
        records(1_000, |i| match i % 10 {
            0 => vec![("shoe_size", "44".into())],
            1 => vec![("lifecyclestage", "bogus".into())],
            _ => vec![("firstname", "A".into())],
        }),
    );
    assert_eq!(portal.requests.borrow().len(), 8);
    assert!(
        matches!(&out.0[&0], Err((Some(c), m)) if c == "PROPERTY_DOESNT_EXIST" && m.contains("shoe_size"))
    );
    assert!(matches!(&out.0[&1], Err((Some(c), _)) if c == "INVALID_OPTION"));
    assert_eq!(out.0.values().filter(|r| r.is_ok()).count(), 800);
}

#[test]
fn what_no_cause_explains_is_halved() {
    // An answer that names nothing: the bad record is found by halving.
    let portal = Scripted::new(|email, _, _| {
        (email == "p37@example.com").then(|| ("SOMETHING", String::new()))
    });
    let mut planner = Planner::new(None, Matching::default(), 64);
    let input = records(100, |_| vec![("firstname", "A".into())]);
    let out = go(&mut planner, &portal, input);
    let requests = portal.requests.borrow().len();
    assert!(requests <= 1 + 2 * 7, "{requests}");
    assert_eq!(out.0.values().filter(|r| r.is_ok()).count(), 99);
    assert!(out.0[&37].is_err());
}

#[test]
fn a_cause_never_named_costs_a_few_requests_per_batch_not_two_per_record() {
    // Every record refused, the answer naming nothing usable: once a few records sent alone
    // were refused the same way (and none landed), refused batches fail whole.
    let portal = Scripted::new(|_, _, _| Some(("SOMETHING", String::new())));
    let mut planner = Planner::new(None, Matching::default(), 64);
    let out = go(
        &mut planner,
        &portal,
        records(1000, |_| vec![("firstname", "A".into())]),
    );
    let requests = portal.requests.borrow().len();
    assert_eq!(out.0.values().filter(|r| r.is_err()).count(), 1000);
    // The first batch: down to a record alone and back up (about 2 x 7), then one per batch.
    assert!(requests <= 2 * 7 + 2 + 9, "{requests}");
    let whole = out
        .0
        .values()
        .filter(|r| matches!(r, Err((_, m)) if m.contains("not split further")));
    assert!(whole.count() >= 900);

    // One bad record in each batch: halving saves the other 99, so it goes on.
    let portal = Scripted::new(|email, _, _| {
        email
            .ends_with("7@example.com")
            .then(|| ("SOMETHING", String::new()))
    });
    let mut planner = Planner::new(None, Matching::default(), 64);
    let out = go(
        &mut planner,
        &portal,
        records(1000, |_| vec![("firstname", "A".into())]),
    );
    let bad = out.0.values().filter(|r| r.is_err()).count();
    assert_eq!(bad, 100, "only p..7 are refused");
    let requests = portal.requests.borrow().len();
    assert!(requests <= 10 * (1 + 2 * 7 * 10), "{requests}");
}

#[test]
fn a_required_property_fails_only_new_contacts_that_lack_it() {
    // 2,000 records, half lacking firstname; 200 of those contacts exist already.
    let portal = Scripted::new(|_, _, _| None).requiring("firstname");
    let lacking = |i: usize| i % 2 == 1;
    for i in (0..2000).filter(|&i| i % 10 == 1) {
        portal.seed(&format!("p{i}@example.com"), &[]);
    }
    let mut planner = Planner::new(None, Matching::default(), 64);
    let input = records(2000, |i| match lacking(i) {
        true => vec![("lastname", "L".into())],
        false => vec![("firstname", "F".into())],
    });
    let out = go(&mut planner, &portal, input);
    let failed: Vec<usize> = out
        .0
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(failed.len(), 800, "the 800 new contacts lacking firstname");
    for i in &failed {
        assert!(lacking(*i));
        assert!(matches!(&out.0[i], Err((Some(c), _)) if c == "MISSING_REQUIRED_PROPERTY"));
    }
    let requests = portal.requests.borrow();
    let reads = requests
        .iter()
        .filter(|r| {
            r.get("idProperty").is_some() && r.get("properties").is_some_and(Json::is_array)
        })
        .count();
    let upserts = requests.len() - reads;
    // 1,200 land: 12 batches, and the first one, refused, that taught the cause; the 1,000
    // lacking it are read, 100 addresses a request.
    let sizes: Vec<usize> = requests
        .iter()
        .filter(|r| r.get("idProperty").is_some())
        .map(|r| r["inputs"].as_array().unwrap().len())
        .collect();
    assert_eq!(reads, 10, "{reads} reads {sizes:?}");
    let usizes: Vec<usize> = requests
        .iter()
        .filter(|r| r.get("idProperty").is_none())
        .map(|r| r["inputs"].as_array().unwrap().len())
        .collect();
    assert!(upserts <= 12 + 3, "{upserts} upserts {usizes:?}");
}

#[test]
fn duplicates_merge_and_later_values_win() {
    let portal = Scripted::new(|_, _, _| None);
    let mut planner = Planner::new(None, Matching::default(), 4);
    let mut input = records(250, |_| vec![("firstname", "first".into())]);
    input.push((
        250,
        BatchInput {
            id: "P5@example.com".into(),
            properties: vec![("firstname".into(), "second".into())],
            links: Vec::new(),
        },
    ));
    let out = go(&mut planner, &portal, input);
    assert_eq!(out.0.len(), 251);
    assert_eq!(
        out.0[&5].as_ref().unwrap().0,
        out.0[&250].as_ref().unwrap().0
    );
    let requests = portal.requests.borrow();
    let last_p5 = requests
        .iter()
        .flat_map(|r| r["inputs"].as_array().unwrap().clone())
        .rfind(|i| {
            i["id"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("p5@example.com")
        })
        .unwrap();
    assert_eq!(last_p5["properties"]["firstname"], "second");
    for r in requests.iter() {
        let ids: Vec<String> = r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_lowercase())
            .collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}

#[test]
fn results_are_matched_by_trace_id_without_an_echo() {
    let portal = Scripted::new(|_, _, _| None);
    let mut planner = Planner::new(None, Matching::default(), 64);
    let out = go(&mut planner, &portal, records(300, |_| vec![]));
    assert_eq!(
        out.0
            .values()
            .filter(|r| matches!(r, Ok((_, true))))
            .count(),
        300
    );
    assert_eq!(portal.requests.borrow().len(), 3);
    let first = &portal.requests.borrow()[0]["inputs"][0];
    assert_eq!(first["objectWriteTraceId"], "0");
    // The address is the id only: sent as a property, it could become the primary address of
    // a contact it matched as an additional one.
    assert_eq!(first["properties"].get("email"), None);
}

#[test]
fn a_split_batch_whose_half_fails_reports_each_half_truly() {
    let mut planner = Planner::new(None, Matching::default(), 8);
    for (i, r) in records(4, |_| vec![]) {
        planner.push(i, r);
    }
    let (first, _) = planner.next_batch(true).unwrap();
    // Rejected with nothing named: split in halves.
    let e = ApiError::from_response(400, None, br#"{"message":"no"}"#);
    assert!(planner.on_answer(first, Err(Error::from(e))).is_none());
    let (a, Call::Upsert(body)) = planner.next_batch(true).unwrap() else {
        panic!("an upsert")
    };
    let sent: Json = serde_json::from_slice(&body).unwrap();
    let results: Vec<Json> = sent["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({"id": "7", "new": true, "objectWriteTraceId": i["objectWriteTraceId"]}))
        .collect();
    let ok = Reply {
        status: 200,
        correlation_id: None,
        body: json!({"results": results}).to_string().into_bytes(),
    };
    assert!(planner.on_answer(a, Ok(ok)).is_none());
    let (b, _) = planner.next_batch(true).unwrap();
    let down = Error::Transport {
        message: "HubSpot is down".into(),
        kind: crate::error::FailureKind::Connect,
        attempts: 6,
    };
    assert!(planner.on_answer(b, Err(down)).is_some());
    let mut outcomes = planner.take_outcomes();
    outcomes.sort_by_key(|o| o.index);
    let landed: Vec<bool> = outcomes
        .iter()
        .map(|o| matches!(o.fate, Fate::Landed(_)))
        .collect();
    assert_eq!(landed, [true, true, false, false]);
}

#[test]
fn the_window_opens_after_the_first_accepted_batch() {
    let mut planner = Planner::new(None, Matching::default(), 8);
    for (i, r) in records(2_000, |_| vec![]) {
        planner.push(i, r);
    }
    let (first, _) = planner.next_batch(false).unwrap();
    assert!(
        planner.next_batch(false).is_none(),
        "one batch until HubSpot has answered"
    );
    let ok = Reply {
        status: 200,
        correlation_id: None,
        body: br#"{"results":[]}"#.to_vec(),
    };
    planner.on_answer(first, Ok(ok));
    let mut n = 0;
    while planner.next_batch(false).is_some() {
        n += 1;
    }
    assert_eq!(n, 8);
}

/// The scripted portal whose answers take `delay` to come back; the first batch is waited
/// for `opens_after` at most.
struct Slow<'a> {
    portal: &'a Scripted,
    delay: Duration,
    opens_after: Option<Duration>,
    sent_at: RefCell<Vec<Instant>>,
}

impl Sender for Slow<'_> {
    fn try_reserve(&self) -> std::result::Result<Instant, NoRoom> {
        Ok(Instant::now())
    }
    fn send(&self, id: BatchId, call: Call, _: Instant, done: Done) {
        self.sent_at.borrow_mut().push(Instant::now());
        let Call::Upsert(body) = call else {
            panic!("only upserts here")
        };
        let answer = self.portal.answer(&body);
        let delay = self.delay;
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = done.send((id, answer));
        });
    }
    fn cancel_all(&self) {}
    fn patience(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn opens_after(&self) -> Option<Duration> {
        self.opens_after
    }
}

#[test]
fn a_slow_first_answer_is_waited_for_only_as_long_as_the_sender_says() {
    let run_with = |opens_after| {
        let portal = Scripted::new(|_, _, _| None);
        let slow = Slow {
            portal: &portal,
            delay: Duration::from_millis(300),
            opens_after,
            sent_at: RefCell::default(),
        };
        let mut planner = Planner::new(None, Matching::default(), 8);
        let mut sink = Collect::default();
        let input = records(500, |_| vec![]);
        run(
            &mut planner,
            &mut Records(input.into_iter()),
            &slow,
            &mut sink,
            &mut Stateless,
            &Quiet,
        )
        .unwrap();
        assert_eq!(sink.0.values().filter(|r| r.is_ok()).count(), 500);
        let sent = slow.sent_at.take();
        assert_eq!(sent.len(), 5);
        sent[1] - sent[0]
    };
    // Until the answer (300 ms) by default; 50 ms where the sender says so, all four at once.
    assert!(run_with(None) >= Duration::from_millis(300));
    let gap = run_with(Some(Duration::from_millis(50)));
    assert!(
        gap >= Duration::from_millis(50) && gap < Duration::from_millis(300),
        "{gap:?}"
    );
}

/// Gives its records, then fails partway through a chunk.
struct FailsAfter(std::vec::IntoIter<(usize, BatchInput)>);
impl Source for FailsAfter {
    fn read(&mut self, max: usize) -> Chunk {
        let records: Vec<_> = self.0.by_ref().take(max).collect();
        let failed = (records.len() < max)
            .then(|| Error::caller(Stop::Signal, Raised::new("the input's own error")));
        Chunk {
            records,
            done: false,
            failed,
        }
    }
}

#[test]
fn records_read_before_the_source_fails_fail_as_not_sent() {
    let portal = Scripted::new(|_, _, _| None);
    let mut planner = Planner::new(None, Matching::default(), 64);
    let mut sink = Collect::default();
    let mut source = FailsAfter(records(250, |_| Vec::new()).into_iter());
    let ended = run(
        &mut planner,
        &mut source,
        &portal,
        &mut sink,
        &mut Stateless,
        &Quiet,
    );
    let raised = ended.unwrap_err();
    assert_eq!(raised.stop(), Some(Stop::Signal));
    // What the input raised comes back untouched.
    let Error::Caller { raised, .. } = raised else {
        unreachable!()
    };
    assert_eq!(raised.get::<&str>(), Some(&"the input's own error"));
    // Every record read has one outcome: landed, or not sent.
    assert_eq!(sink.0.len(), 250);
    let not_sent = sink.0.values().filter(|r| r.is_err()).count();
    assert!(not_sent >= 50, "{not_sent}");
    assert!(sink
        .0
        .values()
        .filter_map(|r| r.as_ref().err())
        .all(|(_, m)| m.starts_with("not sent: the input failed")));
}

fn sent(portal: &Scripted, what: &str) -> Vec<Json> {
    portal
        .requests
        .borrow()
        .iter()
        .filter(|r| match what {
            "read" => r.get("properties").is_some_and(Json::is_array),
            "update" => r["inputs"][0].get("idProperty").is_none() && r.get("properties").is_none(),
            _ => r["inputs"][0].get("idProperty").is_some() && r.get("properties").is_none(),
        })
        .cloned()
        .collect()
}

fn skipped(out: &Collect, code: &str) -> usize {
    out.0
        .values()
        .filter(|r| matches!(r, Err((Some(c), _)) if c == code))
        .count()
}

#[test]
fn update_only_reads_once_per_hundred_and_creates_nothing() {
    let portal = Scripted::new(|_, _, _| None);
    for i in 0..50 {
        portal.seed(&format!("P{i}@example.com"), &[]);
    }
    let matching = Matching::new("email", Mode::Update, Fill::Nothing).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    let out = go(
        &mut planner,
        &portal,
        records(120, |_| vec![("firstname", "A".into())]),
    );
    assert_eq!(out.0.len(), 120);
    assert_eq!(
        out.0
            .values()
            .filter(|r| matches!(r, Ok((_, false))))
            .count(),
        50
    );
    assert_eq!(skipped(&out, "NOT_FOUND"), 70);
    assert_eq!(sent(&portal, "read").len(), 2);
    assert_eq!(sent(&portal, "update").len(), 1);
    assert_eq!(sent(&portal, "upsert").len(), 0);
    assert_eq!(portal.stored.borrow().len(), 50, "nothing was created");
    let update = &sent(&portal, "update")[0]["inputs"];
    assert!(update
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["id"].as_str().unwrap().starts_with("10")));
}

#[test]
fn create_only_skips_contacts_that_exist() {
    let portal = Scripted::new(|_, _, _| None);
    for i in 0..50 {
        portal.seed(&format!("p{i}@example.com"), &[("firstname", "Kept")]);
    }
    let matching = Matching::new("email", Mode::Create, Fill::Nothing).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    let out = go(
        &mut planner,
        &portal,
        records(120, |_| vec![("firstname", "New".into())]),
    );
    assert_eq!(
        out.0
            .values()
            .filter(|r| matches!(r, Ok((_, true))))
            .count(),
        70
    );
    assert_eq!(skipped(&out, "EXISTS"), 50);
    assert_eq!(sent(&portal, "read").len(), 2);
    assert_eq!(sent(&portal, "upsert").len(), 1);
    assert_eq!(sent(&portal, "update").len(), 0);
    assert_eq!(portal.values.borrow()[&1000]["firstname"], "Kept");
}

#[test]
fn fill_empty_writes_only_where_hubspot_has_nothing() {
    let portal = Scripted::new(|_, _, _| None);
    let full = portal.seed("p0@example.com", &[("phone", "111")]);
    let empty = portal.seed("p1@example.com", &[("phone", "")]);
    let only_phone = portal.seed("p2@example.com", &[("phone", "222")]);
    let matching = Matching::new("email", Mode::Upsert, Fill::Only(vec!["phone".into()])).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    let out = go(
        &mut planner,
        &portal,
        records(4, |i| match i {
            2 => vec![("phone", "999".into())],
            _ => vec![("phone", "999".into()), ("firstname", "A".into())],
        }),
    );
    let values = portal.values.borrow();
    assert_eq!(values[&full]["phone"], "111");
    assert_eq!(values[&full]["firstname"], "A");
    assert_eq!(values[&empty]["phone"], "999");
    assert_eq!(values[&only_phone]["phone"], "222");
    assert_eq!(skipped(&out, "NOTHING_TO_FILL"), 1);
    assert!(
        matches!(out.0[&3], Ok((_, true))),
        "a new contact gets every value"
    );
    let reads = sent(&portal, "read");
    assert_eq!(reads.len(), 1);
    assert_eq!(
        reads[0]["properties"],
        json!(["email", "hs_additional_emails", "phone"])
    );
}

#[test]
fn fill_all_asks_for_what_the_records_set_and_rereads_for_a_later_field() {
    let portal = Scripted::new(|_, _, _| None);
    let vid = portal.seed("p0@example.com", &[("phone", "111"), ("city", "Oslo")]);
    let matching = Matching::new("email", Mode::Upsert, Fill::All).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    for (i, r) in records(1, |_| vec![("phone", "999".into())]) {
        planner.push(i, r);
    }
    let (id, Call::Read(body)) = planner.next_batch(true).unwrap() else {
        panic!("a read first")
    };
    // A later record of the same contact sets a field the read did not ask for.
    planner.push(
        1,
        BatchInput {
            id: "p0@example.com".into(),
            properties: vec![("city".into(), "Bergen".into()), ("zip".into(), "1".into())],
            links: Vec::new(),
        },
    );
    assert!(planner.on_answer(id, portal.read(&body)).is_none());
    let (id, Call::Read(body)) = planner.next_batch(true).unwrap() else {
        panic!("read again for the field not asked")
    };
    let asked: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        asked["properties"],
        json!(["email", "hs_additional_emails", "city", "zip"])
    );
    assert!(planner.on_answer(id, portal.read(&body)).is_none());
    let (id, Call::Update(body)) = planner.next_batch(true).unwrap() else {
        panic!("an update")
    };
    let update: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(update["inputs"][0]["id"], vid.to_string());
    assert_eq!(update["inputs"][0]["properties"], json!({"zip": "1"}));
    assert!(planner.on_answer(id, portal.update(&body)).is_none());
    let outcomes = planner.take_outcomes();
    assert_eq!(outcomes.len(), 2);
    assert!(planner.is_done());
}

#[test]
fn a_contact_gone_between_read_and_update_fails_and_is_not_created() {
    let portal = Scripted::new(|_, _, _| None);
    let vid = portal.seed("p0@example.com", &[]);
    let matching = Matching::new("email", Mode::Update, Fill::Nothing).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    for (i, r) in records(1, |_| vec![("phone", "1".into())]) {
        planner.push(i, r);
    }
    let (id, Call::Read(body)) = planner.next_batch(true).unwrap() else {
        panic!("a read")
    };
    assert!(planner.on_answer(id, portal.read(&body)).is_none());
    portal.values.borrow_mut().remove(&vid);
    let (id, Call::Update(body)) = planner.next_batch(true).unwrap() else {
        panic!("an update")
    };
    assert!(planner.on_answer(id, portal.update(&body)).is_none());
    let outcomes = planner.take_outcomes();
    assert!(matches!(&outcomes[0].fate, Fate::Failed(e) if e.to_string().contains("not found")));
    assert!(planner.is_done());
}

#[test]
fn records_keyed_by_another_unique_property() {
    let portal = Scripted::new(|_, _, _| None);
    let matching = Matching::new("external_id", Mode::Upsert, Fill::Nothing).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    let input: Vec<(usize, BatchInput)> = (0..3)
        .map(|i| {
            let id = if i == 2 {
                "Ab-0".to_owned()
            } else {
                format!("Ab-{i}")
            };
            (
                i,
                BatchInput {
                    id,
                    properties: vec![("email".into(), format!("x{i}@example.com"))],
                    links: Vec::new(),
                },
            )
        })
        .collect();
    let out = go(&mut planner, &portal, input);
    let upserts = sent(&portal, "upsert");
    assert_eq!(upserts.len(), 1);
    assert_eq!(
        upserts[0]["inputs"].as_array().unwrap().len(),
        2,
        "Ab-0 twice is merged"
    );
    assert_eq!(upserts[0]["inputs"][0]["idProperty"], "external_id");
    assert_eq!(out.0[&0].as_ref().unwrap().0, out.0[&2].as_ref().unwrap().0);
}

#[test]
fn records_addressed_by_hubspot_id_go_to_batch_update_without_a_read() {
    let portal = Scripted::new(|_, _, _| None);
    let vid = portal.seed("p0@example.com", &[]);
    let matching = Matching::new("hs_object_id", Mode::Upsert, Fill::Nothing).unwrap();
    let mut planner = Planner::new(None, matching, 8);
    let input = vec![
        (
            0,
            BatchInput {
                id: vid.to_string(),
                properties: vec![("phone".into(), "1".into())],
                links: Vec::new(),
            },
        ),
        (
            1,
            BatchInput {
                id: "424242".into(),
                properties: vec![("phone".into(), "2".into())],
                links: Vec::new(),
            },
        ),
    ];
    let out = go(&mut planner, &portal, input);
    assert_eq!(sent(&portal, "read").len(), 0);
    assert_eq!(sent(&portal, "update").len(), 1);
    assert_eq!(out.0[&0], Ok((vid, false)));
    assert!(
        matches!(&out.0[&1], Err((_, m)) if m.contains("not found")),
        "{:?}",
        out.0[&1]
    );
    assert_eq!(portal.stored.borrow().len(), 1);
}

#[test]
fn a_dry_run_reads_and_writes_nothing() {
    let portal = Scripted::new(|_, _, _| None);
    for i in 0..40 {
        portal.seed(&format!("p{i}@example.com"), &[]);
    }
    let mut matching = Matching::new("email", Mode::Update, Fill::Nothing).unwrap();
    matching.dry_run = true;
    let mut planner = Planner::new(None, matching, 8);
    let out = go(
        &mut planner,
        &portal,
        records(250, |_| vec![("a", "1".into())]),
    );
    assert_eq!(skipped(&out, "PLANNED new=false"), 40);
    assert_eq!(skipped(&out, "NOT_FOUND"), 210);
    assert_eq!(portal.requests.borrow().len(), 3, "three reads, no write");
    assert_eq!(sent(&portal, "read").len(), 3);
}

/// A sync state in memory, with every call it was made in order.
#[derive(Default)]
struct Memory {
    held: HashMap<String, Held>,
    calls: Vec<String>,
    /// `sent` fails from this batch on.
    fail_from: Option<BatchId>,
}

impl Ledger for Memory {
    fn active(&self) -> bool {
        true
    }
    fn recall(&mut self, keys: &[String]) -> Result<Vec<Option<Held>>> {
        Ok(keys.iter().map(|k| self.held.get(k).copied()).collect())
    }
    fn sent(&mut self, batch: BatchId, records: usize) -> Result<()> {
        if self.fail_from.is_some_and(|from| batch >= from) {
            return Err(Error::InvalidInput("the disk is full".into()));
        }
        self.calls.push(format!("sent {batch} {records}"));
        Ok(())
    }
    fn answered(&mut self, batch: Option<BatchId>, accepted: &[Accepted]) -> Result<()> {
        self.calls
            .push(format!("answered {batch:?} {}", accepted.len()));
        for a in accepted {
            let held = Held {
                fingerprint: a.fingerprint,
                object_id: a.object_id,
            };
            self.held.insert(a.key.clone(), held);
        }
        Ok(())
    }
    fn forget(&mut self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.held.remove(key);
        }
        Ok(())
    }
}

fn go_with(
    portal: &Scripted,
    ledger: &mut Memory,
    input: Vec<(usize, BatchInput)>,
) -> (Collect, Result<()>) {
    let mut planner = Planner::new(None, Matching::default(), 4);
    let mut sink = Collect::default();
    let ended = run(
        &mut planner,
        &mut Records(input.into_iter()),
        portal,
        &mut sink,
        ledger,
        &Quiet,
    );
    (sink, ended)
}

#[test]
fn a_sync_state_sends_only_what_changed() {
    let portal = Scripted::new(|_, _, _| None);
    let mut ledger = Memory::default();
    let first = |i: usize| vec![("firstname", format!("P{i}"))];
    let (out, ended) = go_with(&portal, &mut ledger, records(1_000, first));
    ended.unwrap();
    assert_eq!(portal.requests.borrow().len(), 10);
    assert_eq!(ledger.held.len(), 1_000);
    assert!(out.0.values().all(|r| r.is_ok()));
    // Every batch is journalled before it goes, and answered with what landed.
    assert_eq!(ledger.calls.first().unwrap(), "sent 0 100");
    assert_eq!(
        ledger
            .calls
            .iter()
            .filter(|c| c.starts_with("sent"))
            .count(),
        10
    );
    assert_eq!(
        ledger
            .calls
            .iter()
            .filter(|c| c.ends_with(" 100") && c.starts_with("answered Some"))
            .count(),
        10
    );

    // The same records again: nothing is sent, each is unchanged on its contact.
    let (out, ended) = go_with(&portal, &mut ledger, records(1_000, first));
    ended.unwrap();
    assert_eq!(portal.requests.borrow().len(), 10);
    assert_eq!(out.0.len(), 1_000);
    let vid = portal.stored.borrow()["p7@example.com"];
    assert_eq!(out.0[&7], Err((Some("UNCHANGED".into()), vid.to_string())));

    // Three changed: one request, and the state holds their new values.
    let changed = |i: usize| match i {
        3 | 500 | 999 => vec![("firstname", format!("Q{i}"))],
        _ => first(i),
    };
    let (out, ended) = go_with(&portal, &mut ledger, records(1_000, changed));
    ended.unwrap();
    assert_eq!(portal.requests.borrow().len(), 11);
    assert!(out.0[&500].is_ok());
    assert_eq!(
        portal.values.borrow()[&portal.stored.borrow()["p500@example.com"]]["firstname"],
        "Q500"
    );
    let (_, ended) = go_with(&portal, &mut ledger, records(1_000, changed));
    ended.unwrap();
    assert_eq!(portal.requests.borrow().len(), 11);
}

#[test]
fn a_record_repeated_after_a_changed_one_is_sent_too() {
    // The later record must be applied after the earlier one, as without a state.
    let portal = Scripted::new(|_, _, _| None);
    let mut ledger = Memory::default();
    let input = |a: &str, b: &str| {
        vec![
            (
                0,
                BatchInput {
                    id: "x@example.com".into(),
                    properties: vec![("city".into(), a.into())],
                    links: Vec::new(),
                },
            ),
            (
                1,
                BatchInput {
                    id: "X@example.com".into(),
                    properties: vec![("city".into(), b.into())],
                    links: Vec::new(),
                },
            ),
        ]
    };
    go_with(&portal, &mut ledger, input("Oslo", "Rome"))
        .1
        .unwrap();
    let (out, ended) = go_with(&portal, &mut ledger, input("Paris", "Rome"));
    ended.unwrap();
    assert!(out.0[&0].is_ok() && out.0[&1].is_ok(), "{:?}", out.0);
    let vid = portal.stored.borrow()["x@example.com"];
    assert_eq!(portal.values.borrow()[&vid]["city"], "Rome");
}

#[test]
fn a_state_that_cannot_journal_stops_the_run_before_sending() {
    let portal = Scripted::new(|_, _, _| None);
    let mut ledger = Memory {
        fail_from: Some(3),
        ..Memory::default()
    };
    let (out, ended) = go_with(&portal, &mut ledger, records(1_000, |_| vec![]));
    assert!(matches!(ended, Err(Error::InvalidInput(m)) if m.contains("disk")));
    // What was journalled went and landed; nothing else was sent, and every record read
    // that did not land says so.
    assert_eq!(portal.requests.borrow().len(), 3);
    assert_eq!(ledger.held.len(), 300);
    let landed = out.0.values().filter(|r| r.is_ok()).count();
    let not_sent = out
        .0
        .values()
        .filter(|r| matches!(r, Err((_, m)) if m.contains("not sent")))
        .count();
    assert_eq!((landed, not_sent), (300, out.0.len() - 300));
}
