//! Associations made after a bulk run: each record that landed gets HubSpot's default
//! association with the record of another object type that its key names. Keys are looked up
//! by a unique property of that type (a batch read per 100 keys; none for HubSpot's own ids),
//! then the associations are made 100 per request. Nothing is created: a key no record has
//! fails that record's association, and the record stays landed.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Client, Hooks, Log};
use crate::api::{self, ObjectType, OBJECT_ID};
use crate::error::{ApiError, Error, FieldError, Result};
use crate::planner::{Fill, Matching, Mode};
use crate::transport::Answer;

/// The code of a record whose associated record does not exist.
pub(crate) const NOT_FOUND: &str = "ASSOCIATION_TARGET_NOT_FOUND";
/// Requests of one step in flight at once, after the first has been answered.
const IN_FLIGHT: usize = 8;

/// One association of a run: records are associated with the `to` record whose `by`
/// property has the key the record names (`hs_object_id`: the key is HubSpot's id), with
/// HubSpot's default association, or with the association label `label` ("Primary", a
/// label the portal defined).
#[derive(Debug, Clone)]
pub struct Association {
    pub to: ObjectType,
    pub by: String,
    pub label: Option<String>,
}

/// A record of a bulk run that landed as object `from` and names records to associate it
/// with: one key per association of the run (None where it names none).
#[derive(Debug, Clone)]
pub struct Linked {
    pub index: usize,
    pub from: i64,
    /// Its key in the sync state.
    pub state_key: String,
    pub keys: Vec<Option<String>>,
}

/// What a bulk run's association phase did.
#[derive(Debug, Default)]
pub struct Linking {
    /// Associations made.
    pub associated: usize,
    /// The records not associated (or whose stale association could not be removed), each
    /// with why, by index; the sync state has forgotten them.
    pub unassociated: Vec<(usize, Error)>,
}

/// What associating the links of one association did.
#[derive(Debug, Default)]
pub struct Associated {
    /// The links that did not become associations, each with why.
    pub failed: Vec<(usize, Error)>,
    /// `(index, id of the record associated with)` of each link made.
    pub made: Vec<(usize, i64)>,
}

/// A record that landed as object `from`, and the key of the record to associate it with.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: usize,
    pub from: i64,
    pub key: String,
}

impl Client {
    /// Checks, before anything is written, that `association` of records of `from` can be
    /// made: its object type exists and `by` is a unique property of it (one request, kept as
    /// for bulk runs), and its label is one the portal has for the pair (one more).
    pub fn check_association(
        &self,
        from: &ObjectType,
        association: &Association,
        hooks: &dyn Hooks,
    ) -> Result<()> {
        if let Some(label) = &association.label {
            self.association_label(from, &association.to, label, hooks)?;
        }
        let schema = self.property_definitions(&association.to, hooks)?;
        if association.by == OBJECT_ID {
            return Ok(());
        }
        let mut matching = Matching::new(&association.by, Mode::Upsert, Fill::Nothing)?;
        matching.object = association.to.clone();
        match schema.as_deref().and_then(|s| matching.refusal(s)) {
            None => Ok(()),
            Some(Error::InvalidInput(why)) => Err(Error::InvalidInput(
                why.replace("id_property", "the associated records' key property")
                    .replace("; nothing was sent", "")
                    + "; nothing was sent",
            )),
            Some(other) => Err(other),
        }
    }

    /// The label `name` of associations from `from` to `to` (any case), read from the
    /// portal's labels once per client; refused, naming the labels there are, when the portal
    /// has none of that name.
    fn association_label(
        &self,
        from: &ObjectType,
        to: &ObjectType,
        name: &str,
        hooks: &dyn Hooks,
    ) -> Result<api::AssociationLabel> {
        let pair = (from.name().to_owned(), to.name().to_owned());
        let known = self
            .association_labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pair)
            .cloned();
        let labels = match known {
            Some(labels) => labels,
            None => {
                let url = format!(
                    "{}{}",
                    self.base_url,
                    self.api.associations_path(from, to, "labels")
                );
                let answer = self.request_blocking(reqwest::Method::GET, &url, None, hooks)?;
                let labels = api::parse_labels(&answer.body).ok_or_else(|| {
                    Error::from(ApiError::not_understood(
                        answer.status,
                        answer.correlation_id.clone(),
                        &answer.body,
                        "the association labels request",
                        "",
                    ))
                })?;
                self.association_labels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(pair, labels.clone());
                labels
            }
        };
        let wanted = name.trim();
        if let Some(found) = labels.iter().find(|l| {
            l.label
                .as_deref()
                .is_some_and(|l| l.trim().eq_ignore_ascii_case(wanted))
        }) {
            return Ok(found.clone());
        }
        let named: Vec<String> = labels
            .iter()
            .filter_map(|l| l.label.as_deref().map(|l| format!("'{l}'")))
            .collect();
        let there = match named.is_empty() {
            true => "none".to_owned(),
            false => named.join(", "),
        };
        Err(Error::InvalidInput(format!(
            "the portal has no association label '{wanted}' from {} to {} (its labels: {there}); \
             nothing was sent",
            from.name(),
            to.name()
        )))
    }

    /// Associates each of `links` (records of `from`) as `association` says. Returns the
    /// links made and those that did not become associations, each with why; an `Err` only
    /// when the caller's hooks stopped it (the associations made so far stay made).
    pub fn associate(
        self: &Arc<Self>,
        from: &ObjectType,
        association: &Association,
        links: Vec<Link>,
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
    ) -> Result<Associated> {
        if links.is_empty() {
            return Ok(Associated::default());
        }
        let to = &association.to;
        let mut failed = Vec::new();
        // The keys' records.
        let ids: HashMap<String, std::result::Result<i64, Error>> = if association.by == OBJECT_ID {
            links
                .iter()
                .map(|l| {
                    (
                        l.key.clone(),
                        l.key
                            .parse::<i64>()
                            .map_err(|_| no_such(association, &l.key)),
                    )
                })
                .collect()
        } else {
            let mut keys: Vec<&str> = links.iter().map(|l| l.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            let url = format!("{}{}", self.base_url, self.api.batch_read_path(to));
            let calls: Vec<(String, Vec<u8>)> = keys
                .chunks(api::V3_BATCH_MAX)
                .map(|chunk| {
                    let body = api::v3_batch_read_body(&association.by, chunk.iter().copied(), &[]);
                    (url.clone(), body)
                })
                .collect();
            let answers = self.send_all(calls, hooks, &log)?;
            let mut ids = HashMap::new();
            for (chunk, answer) in keys.chunks(api::V3_BATCH_MAX).zip(answers) {
                let found = answer.and_then(|a| {
                    api::parse_v3_read(&a.body, &association.by).ok_or_else(|| {
                        Error::from(ApiError::not_understood(
                            a.status,
                            a.correlation_id.clone(),
                            &a.body,
                            "a batch read of associated records",
                            "",
                        ))
                    })
                });
                match found {
                    Ok(found) => {
                        let by_key: HashMap<&str, i64> = found
                            .iter()
                            .flat_map(|f| f.ids.iter().map(|k| (k.as_str(), f.object_id)))
                            .collect();
                        for key in chunk {
                            let id = by_key
                                .get(key.trim())
                                .copied()
                                .ok_or_else(|| no_such(association, key));
                            ids.insert((*key).to_owned(), id);
                        }
                    }
                    Err(error) => {
                        for key in chunk {
                            ids.insert((*key).to_owned(), Err(error.clone()));
                        }
                    }
                }
            }
            ids
        };
        let mut pairs: Vec<(usize, i64, i64)> = Vec::with_capacity(links.len());
        for link in links {
            match &ids[&link.key] {
                Ok(to) => pairs.push((link.index, link.from, *to)),
                Err(error) => failed.push((link.index, landed_anyway(error, from, link.from))),
            }
        }
        // The associations: labelled (checked by check_association), or HubSpot's default.
        let label = match &association.label {
            Some(name) => Some(self.association_label(from, to, name, hooks)?),
            None => None,
        };
        let url = match label {
            Some(_) => self.api.associations_path(from, to, "batch/create"),
            None => self.api.associate_path(from, to),
        };
        let url = format!("{}{url}", self.base_url);
        let calls: Vec<(String, Vec<u8>)> = pairs
            .chunks(api::V3_BATCH_MAX)
            .map(|chunk| {
                let ids: Vec<(i64, i64)> = chunk.iter().map(|&(_, f, t)| (f, t)).collect();
                let body = match &label {
                    Some(label) => api::labelled_body(&ids, label),
                    None => api::associate_body(&ids),
                };
                (url.clone(), body)
            })
            .collect();
        let answers = self.send_all(calls, hooks, &log)?;
        for (chunk, answer) in pairs.chunks(api::V3_BATCH_MAX).zip(answers) {
            failed.extend(unmade(from, chunk, answer));
        }
        failed.sort_unstable_by_key(|(index, _)| *index);
        let unmade: std::collections::HashSet<usize> = failed.iter().map(|(i, _)| *i).collect();
        let made = pairs
            .iter()
            .filter(|(index, _, _)| !unmade.contains(index))
            .map(|&(index, _, to)| (index, to))
            .collect();
        Ok(Associated { failed, made })
    }

    /// The association phase of a bulk run, once every record has landed: each `linked`
    /// record is associated as each of `associations` says; with a sync state, the state is
    /// told what each is associated with now, and the associations it made before that are no
    /// longer true (the record moved to another record, or names none) are removed. A record
    /// whose association failed is forgotten by the state, so that the next run sends it
    /// again. An `Err` only when the hooks stopped it or the state failed.
    pub fn associate_run(
        self: &Arc<Self>,
        object: &ObjectType,
        associations: &[Association],
        linked: &[Linked],
        ledger: &mut dyn crate::state::Ledger,
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
    ) -> Result<Linking> {
        let mut unmade: HashMap<usize, Error> = HashMap::new();
        let mut associated = 0;
        for (k, association) in associations.iter().enumerate() {
            let links: Vec<Link> = linked
                .iter()
                .filter_map(|l| {
                    Some(Link {
                        index: l.index,
                        from: l.from,
                        key: l.keys.get(k)?.clone()?,
                    })
                })
                .collect();
            let done = self.associate(object, association, links, hooks, log.clone())?;
            associated += done.made.len();
            let failed: std::collections::HashSet<usize> =
                done.failed.iter().map(|(i, _)| *i).collect();
            for (index, error) in done.failed {
                unmade.entry(index).or_insert(error);
            }
            if !ledger.active() {
                continue;
            }
            // What each record is associated with now; a record whose association failed
            // keeps what the state knew (it is forgotten, and sent again next time).
            let made: HashMap<usize, i64> = done.made.into_iter().collect();
            let now: Vec<(&Linked, Option<i64>)> = linked
                .iter()
                .filter(|l| !failed.contains(&l.index))
                .map(|l| (l, made.get(&l.index).copied()))
                .collect();
            let links: Vec<(String, Option<i64>)> = now
                .iter()
                .map(|(l, to)| (l.state_key.clone(), *to))
                .collect();
            let before = ledger.relink(association.to.name(), &links)?;
            // The associations this state made that are no longer true.
            let stale: Vec<(usize, i64, i64)> = now
                .iter()
                .zip(before)
                .filter_map(|((l, to), old)| {
                    let old = old?;
                    (Some(old) != *to).then_some((l.index, l.from, old))
                })
                .collect();
            if stale.is_empty() {
                continue;
            }
            let pairs: Vec<(i64, i64)> = stale.iter().map(|&(_, f, t)| (f, t)).collect();
            let kept = self.unassociate(object, &association.to, &pairs, hooks, log.clone())?;
            for ((from, old), error) in kept {
                if let Some(&(index, _, _)) = stale.iter().find(|&&(_, f, t)| (f, t) == (from, old))
                {
                    unmade.entry(index).or_insert(error);
                }
            }
        }
        let mut unassociated: Vec<(usize, Error)> = unmade.into_iter().collect();
        unassociated.sort_unstable_by_key(|(index, _)| *index);
        if ledger.active() && !unassociated.is_empty() {
            let forget: Vec<String> = linked
                .iter()
                .filter(|l| unassociated.iter().any(|(i, _)| *i == l.index))
                .map(|l| l.state_key.clone())
                .collect();
            ledger.forget(&forget)?;
        }
        Ok(Linking {
            associated,
            unassociated,
        })
    }

    /// Removes every association between each `(from id, to id)` pair (records of `from` and
    /// of `to`), 100 pairs a request: those a sync state made that its records no longer
    /// name. Returns the pairs not removed, each with why; an `Err` only when the caller's
    /// hooks stopped it.
    pub fn unassociate(
        self: &Arc<Self>,
        from: &ObjectType,
        to: &ObjectType,
        pairs: &[(i64, i64)],
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
    ) -> Result<Vec<((i64, i64), Error)>> {
        let url = format!(
            "{}{}",
            self.base_url,
            self.api.associations_path(from, to, "batch/archive")
        );
        let calls: Vec<(String, Vec<u8>)> = pairs
            .chunks(api::V3_BATCH_MAX)
            .map(|chunk| (url.clone(), api::unassociate_body(chunk)))
            .collect();
        let answers = self.send_all(calls, hooks, &log)?;
        Ok(unanswered(pairs, answers))
    }

    /// Sends `calls` (POSTs) and returns their answers in the same order: the first alone (a
    /// refusal of every request, a missing permission say, then costs one request: the others
    /// fail with it unsent), then the rest up to [`IN_FLIGHT`] at once, paced as every request.
    pub(super) fn send_all(
        self: &Arc<Self>,
        calls: Vec<(String, Vec<u8>)>,
        hooks: &dyn Hooks,
        log: &Arc<dyn Log>,
    ) -> Result<Vec<Result<Answer>>> {
        let lease = self.transports.lease()?;
        let mut calls = calls.into_iter();
        let Some((url, body)) = calls.next() else {
            return Ok(Vec::new());
        };
        let first = self.run(
            &lease.handle,
            self.request(
                &lease.http,
                reqwest::Method::POST,
                &url,
                Some(body),
                &**log,
                None,
            ),
            hooks,
        )?;
        let rest: Vec<(String, Vec<u8>)> = calls.collect();
        let mut answers = vec![first];
        if let Err(error) = &answers[0] {
            let error = error.clone();
            answers.extend(rest.iter().map(|_| Err(error.clone())));
            return Ok(answers);
        }
        let (client, http, log) = (self.clone(), lease.http.clone(), log.clone());
        let rest = self.run(
            &lease.handle,
            async move {
                let mut set = tokio::task::JoinSet::new();
                let mut out: Vec<Option<Result<Answer>>> = rest.iter().map(|_| None).collect();
                let mut queue = rest.into_iter().enumerate();
                loop {
                    while set.len() < IN_FLIGHT {
                        let Some((i, (url, body))) = queue.next() else {
                            break;
                        };
                        let (client, http, log) = (client.clone(), http.clone(), log.clone());
                        set.spawn(async move {
                            let answer = client
                                .request(
                                    &http,
                                    reqwest::Method::POST,
                                    &url,
                                    Some(body),
                                    &*log,
                                    None,
                                )
                                .await;
                            (i, answer)
                        });
                    }
                    match set.join_next().await {
                        Some(Ok((i, answer))) => out[i] = Some(answer),
                        Some(Err(_)) => {}
                        None => break,
                    }
                }
                out
            },
            hooks,
        )?;
        answers.extend(
            rest.into_iter().map(|a| {
                a.unwrap_or_else(|| Err(Error::Internal("a batch request was lost".into())))
            }),
        );
        Ok(answers)
    }
}

/// The items of `items` whose request (one per [`api::V3_BATCH_MAX`] of them, in order)
/// failed, each with its request's error; the others' requests were answered 2xx.
pub(super) fn unanswered<T: Copy>(items: &[T], answers: Vec<Result<Answer>>) -> Vec<(T, Error)> {
    let mut failed = Vec::new();
    for (chunk, answer) in items.chunks(api::V3_BATCH_MAX).zip(answers) {
        if let Err(error) = answer {
            failed.extend(chunk.iter().map(|&item| (item, error.clone())));
        }
    }
    failed
}

/// Why a link's key named no record.
fn no_such(association: &Association, key: &str) -> Error {
    let message = format!("no {} has {} '{key}'", association.to.one(), association.by);
    Error::Refused {
        message: message.clone(),
        status: None,
        correlation_id: None,
        field: Box::new(FieldError {
            name: Some(association.by.clone()),
            code: Some(NOT_FOUND.to_owned()),
            message: Some(message),
        }),
        also: Vec::new(),
    }
}

/// A link's failure, saying that its record (a `from`) landed all the same.
fn landed_anyway(error: &Error, from: &ObjectType, id: i64) -> Error {
    let more = format!(
        "; the {} landed (id {id}) and is not associated",
        from.one()
    );
    match error.clone() {
        Error::Refused {
            message,
            status,
            correlation_id,
            field,
            also,
        } => Error::Refused {
            message: message + &more,
            status,
            correlation_id,
            field,
            also,
        },
        Error::Api(api) => Error::Api(Box::new(api.adding(&more))),
        other => other,
    }
}

/// The links of one association request that it did not make, each with why.
fn unmade(
    object: &ObjectType,
    chunk: &[(usize, i64, i64)],
    answer: Result<Answer>,
) -> Vec<(usize, Error)> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            return chunk
                .iter()
                .map(|&(index, from, _)| (index, landed_anyway(&error, object, from)))
                .collect()
        }
    };
    let Some(made) = api::parse_associated(&answer.body) else {
        let error = Error::from(ApiError::not_understood(
            answer.status,
            answer.correlation_id.clone(),
            &answer.body,
            "a batch of associations",
            "",
        ));
        return chunk
            .iter()
            .map(|&(index, from, _)| (index, landed_anyway(&error, object, from)))
            .collect();
    };
    let made: std::collections::HashSet<(i64, i64)> = made.into_iter().collect();
    let errors: Vec<(Vec<i64>, Error)> = api::input_errors(&answer.body)
        .into_iter()
        .map(|(_, text)| {
            let error =
                ApiError::refused_input(answer.status, answer.correlation_id.clone(), &text);
            (api::ids_named(&text), Error::from(error))
        })
        .collect();
    chunk
        .iter()
        .filter(|&&(_, from, to)| !made.contains(&(from, to)))
        .map(|&(index, from, to)| {
            let why = errors
                .iter()
                .find(|(ids, _)| ids.contains(&from) || ids.contains(&to))
                .or(errors.first())
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| {
                    Error::from(ApiError::unlisted(
                        answer.status,
                        answer.correlation_id.clone(),
                    ))
                });
            (index, landed_anyway(&why, object, from))
        })
        .collect()
}
