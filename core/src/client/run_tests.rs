//! A bulk run's association phase on a scripted HubSpot: the client's every attempt goes to
//! the script ([`Client::through`]), which answers by path and keeps what was sent. The
//! keys are looked up, the label read, the labelled associations made, and the association
//! the sync state made before and that is no longer true removed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::tests::{config, Quiet};
use super::{Association, Client, Linked};
use crate::api::ObjectType;
use crate::error::{Error, Result};
use crate::pacing::RateHeaders;
use crate::planner::BatchId;
use crate::state::{Accepted, Held, Ledger};
use crate::transport::{Answer, Credential, Exchange};

/// Answers each attempt with the next `(path suffix, status, body)` whose suffix the path
/// ends with, in order; keeps each attempt's method, path and body.
#[derive(Default)]
struct Routes {
    answers: Mutex<VecDeque<(&'static str, u16, &'static str)>>,
    sent: Mutex<Vec<(String, String, String)>>,
}

impl Exchange for Routes {
    fn exchange<'a>(
        &'a self,
        method: reqwest::Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        _: Credential<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer>> + Send + 'a>> {
        let path = url.trim_start_matches("http://127.0.0.1:9").to_owned();
        let body = String::from_utf8(body.unwrap_or_default()).unwrap();
        self.sent
            .lock()
            .unwrap()
            .push((method.to_string(), path.clone(), body));
        let next = self.answers.lock().unwrap().pop_front();
        Box::pin(async move {
            let (suffix, status, body) = next.expect("an answer for every attempt");
            assert!(
                path.ends_with(suffix),
                "{path} was sent where {suffix} was expected"
            );
            Ok(Answer {
                status,
                correlation_id: Some("corr".into()),
                retry_after: None,
                rate: RateHeaders::default(),
                body: body.as_bytes().to_vec(),
            })
        })
    }
}

/// A sync state that knew each key associated with `before`'s record, and keeps what it is
/// told.
struct Links {
    before: Vec<(String, i64)>,
    relinked: Vec<(String, String, Option<i64>)>,
    forgotten: Vec<String>,
}

impl Ledger for Links {
    fn active(&self) -> bool {
        true
    }
    fn recall(&mut self, keys: &[String]) -> Result<Vec<Option<Held>>> {
        Ok(vec![None; keys.len()])
    }
    fn sent(&mut self, _: BatchId, _: usize) -> Result<()> {
        Ok(())
    }
    fn answered(&mut self, _: Option<BatchId>, _: &[Accepted]) -> Result<()> {
        Ok(())
    }
    fn forget(&mut self, keys: &[String]) -> Result<()> {
        self.forgotten.extend_from_slice(keys);
        Ok(())
    }
    fn relink(&mut self, to: &str, links: &[(String, Option<i64>)]) -> Result<Vec<Option<i64>>> {
        let before = links
            .iter()
            .map(|(key, _)| {
                self.before
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, id)| *id)
            })
            .collect();
        for (key, now) in links {
            self.relinked.push((to.to_owned(), key.clone(), *now));
        }
        Ok(before)
    }
}

fn client(routes: Arc<Routes>) -> Arc<Client> {
    Arc::new(Client::through(config(), routes).unwrap())
}

fn linked(index: usize, from: i64, key: &str) -> Linked {
    Linked {
        index,
        from,
        state_key: format!("lead{index}@example.com"),
        keys: vec![Some(key.to_owned())],
    }
}

#[test]
fn a_run_makes_labelled_associations_and_removes_the_one_a_moved_record_left() {
    let routes = Arc::new(Routes::default());
    routes.answers.lock().unwrap().extend([
        (
            "/crm/objects/2026-09/companies/batch/read",
            200,
            r#"{"status":"COMPLETE","results":[
                {"id":"501","properties":{"crm_id":"acme","hs_object_id":"501"}},
                {"id":"502","properties":{"crm_id":"globex","hs_object_id":"502"}}]}"#,
        ),
        (
            "/crm/associations/2026-09/contacts/companies/labels",
            200,
            r#"{"results":[{"category":"HUBSPOT_DEFINED","typeId":279,"label":null},
                {"category":"HUBSPOT_DEFINED","typeId":1,"label":"Primary"}]}"#,
        ),
        (
            "/crm/associations/2026-09/contacts/companies/batch/create",
            200,
            r#"{"status":"COMPLETE","results":[
                {"fromObjectId":11,"toObjectId":501,"labels":["Primary"]},
                {"fromObjectId":12,"toObjectId":502,"labels":["Primary"]}]}"#,
        ),
        (
            "/crm/associations/2026-09/contacts/companies/batch/archive",
            204,
            "",
        ),
    ]);
    let c = client(routes.clone());
    let association = Association {
        to: ObjectType::parse("companies").unwrap(),
        by: "crm_id".into(),
        label: Some("primary".into()),
    };
    // lead0 was with company 502 and moved to acme (501); lead1 stays with globex (502).
    let mut ledger = Links {
        before: vec![
            ("lead0@example.com".into(), 502),
            ("lead1@example.com".into(), 502),
        ],
        relinked: Vec::new(),
        forgotten: Vec::new(),
    };
    let records = [linked(0, 11, "acme"), linked(1, 12, "globex")];
    let done = c
        .associate_run(
            &ObjectType::default(),
            &[association],
            &records,
            &mut ledger,
            &Quiet,
            Arc::new(Quiet),
        )
        .unwrap();
    assert_eq!((done.associated, done.unassociated.len()), (2, 0));
    let sent = routes.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 4, "{sent:?}");
    let create: serde_json::Value = serde_json::from_str(&sent[2].2).unwrap();
    assert_eq!(
        create["inputs"][0]["types"],
        serde_json::json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}])
    );
    let archive: serde_json::Value = serde_json::from_str(&sent[3].2).unwrap();
    assert_eq!(
        archive,
        serde_json::json!({"inputs": [{"from": {"id": "11"}, "to": [{"id": "502"}]}]})
    );
    assert_eq!(
        ledger.relinked,
        [
            ("companies".into(), "lead0@example.com".into(), Some(501)),
            ("companies".into(), "lead1@example.com".into(), Some(502)),
        ]
    );
    assert!(ledger.forgotten.is_empty());
}

#[test]
fn a_key_no_record_has_is_not_associated_and_the_state_forgets_it() {
    let routes = Arc::new(Routes::default());
    routes.answers.lock().unwrap().extend([
        (
            "/crm/objects/2026-09/companies/batch/read",
            200,
            r#"{"status":"COMPLETE","results":[
                {"id":"501","properties":{"crm_id":"acme","hs_object_id":"501"}}]}"#,
        ),
        (
            "/crm/associations/2026-09/contacts/companies/batch/associate/default",
            200,
            r#"{"status":"COMPLETE","results":[{"from":{"id":"11"},"to":{"id":"501"}}]}"#,
        ),
    ]);
    let c = client(routes.clone());
    let association = Association {
        to: ObjectType::parse("companies").unwrap(),
        by: "crm_id".into(),
        label: None,
    };
    let mut ledger = Links {
        before: vec![("lead1@example.com".into(), 777)],
        relinked: Vec::new(),
        forgotten: Vec::new(),
    };
    let records = [linked(0, 11, "acme"), linked(1, 12, "initech")];
    let done = c
        .associate_run(
            &ObjectType::default(),
            &[association],
            &records,
            &mut ledger,
            &Quiet,
            Arc::new(Quiet),
        )
        .unwrap();
    assert_eq!(done.associated, 1);
    let (index, error) = &done.unassociated[0];
    assert_eq!(*index, 1);
    assert!(
        matches!(error, Error::Refused { field, .. } if field.code.as_deref() == Some("ASSOCIATION_TARGET_NOT_FOUND")),
        "{error}"
    );
    // The record that failed keeps its old link (nothing removed); it is forgotten.
    assert_eq!(ledger.forgotten, ["lead1@example.com"]);
    assert_eq!(
        ledger.relinked,
        [("companies".into(), "lead0@example.com".into(), Some(501))]
    );
    assert_eq!(routes.sent.lock().unwrap().len(), 2);
}
