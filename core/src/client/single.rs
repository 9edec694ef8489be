//! The single upsert, the one path of the sync and the async face: v1 `createOrUpdate`, or a
//! batch upsert (or update, by HubSpot's id) of one.

use std::sync::Arc;

use super::{Client, Hooks, Log};
use crate::api::{self, ApiVersion, BatchInput, Landed, ObjectType};

use crate::error::{ApiError, ApiErrorKind, Error, Result};
use crate::transport::{Answer, Exchange, Here};

impl Client {
    /// The outcome of a batch upsert of one input: its result, or the error a 207 gave it.
    pub(super) fn batch_of_one(&self, answer: Answer) -> Result<(Option<Landed>, Answer)> {
        let outcome = api::parse_v3_batch(&answer.body)
            .and_then(|results| results.into_iter().next())
            .map(|r| Landed {
                vid: r.vid,
                is_new: r.is_new,
            });
        // A partial answer (a 207, or 2026-09's 200 with `errors`) that refused the input.
        let refused = api::input_errors(&answer.body).into_iter().next();
        if outcome.is_none() && (answer.status == 207 || refused.is_some()) {
            let body = refused.map_or_else(|| answer.body.clone(), |(_, error)| error);
            let e = ApiError::refused_input(answer.status, answer.correlation_id.clone(), &body);
            return Err(e.into());
        }
        Ok((outcome, answer))
    }

    /// A 404 from a date-versioned path: HubSpot does not know the version. Says so, naming
    /// the setting.
    pub(super) fn explain_404(&self, version: &ApiVersion, error: Error) -> Error {
        match error {
            Error::Api(e) if e.status == 404 && *version != ApiVersion::Legacy => e
                .unknown_version(version.name(), api::OLDEST_DATED, api::NEWEST_DATED)
                .into(),
            other => other,
        }
    }

    /// Creates or updates the contact whose `id_property` is `id` (its email, by default),
    /// setting `properties` (already HubSpot text), on the calling thread, which sends the
    /// request itself where no proxy is set; `hooks` may stop it between slices. The caller has
    /// checked `id` with [`Matching::check_id`] where it read it, as it does each bulk record.
    pub fn create_or_update(
        &self,
        object: &ObjectType,
        id: &str,
        id_property: &str,
        properties: &[(String, String)],
        hooks: &dyn Hooks,
    ) -> Result<Landed> {
        let lease = self.transports.lease()?;
        let Some(direct) = &lease.direct else {
            return self.create_or_update_via_io_thread(object, id, id_property, properties, hooks);
        };
        let here = Here {
            direct,
            handle: &lease.handle,
            hooks,
        };
        let upsert = self.create_or_update_on(&here, object, id, id_property, properties, hooks);
        self.run_here(&lease.handle, upsert, hooks)?
    }

    /// The same upsert sent through the I/O thread's pool (as the async face's and bulk runs'
    /// requests are), the calling thread waiting in slices: where a proxy is set, and what the
    /// benchmark measures the calling thread's transport against.
    pub fn create_or_update_via_io_thread(
        &self,
        object: &ObjectType,
        id: &str,
        id_property: &str,
        properties: &[(String, String)],
        hooks: &dyn Hooks,
    ) -> Result<Landed> {
        let lease = self.transports.lease()?;
        let upsert =
            self.create_or_update_on(&lease.http, object, id, id_property, properties, hooks);
        self.run(&lease.handle, upsert, hooks)?
    }

    /// The same upsert as a task on the client's runtime, for callers that do not wait on a
    /// thread (an asyncio event loop): `done` gets the outcome on the runtime's thread.
    /// Aborting the returned handle drops the request in flight.
    pub fn spawn_create_or_update(
        self: &Arc<Self>,
        object: ObjectType,
        id: String,
        id_property: String,
        properties: Vec<(String, String)>,
        log: Arc<dyn Log>,
        done: impl FnOnce(Result<Landed>) + Send + 'static,
    ) -> Result<tokio::task::AbortHandle> {
        let lease = self.transports.lease()?;
        let client = self.clone();
        let handle = lease.handle.clone();
        let task = handle.spawn(async move {
            let http = lease.http.clone();
            let outcome = client
                .create_or_update_on(&http, &object, &id, &id_property, &properties, &*log)
                .await;
            drop(lease);
            done(outcome);
        });
        Ok(task.abort_handle())
    }

    /// The one upsert path of both faces: a batch of one on the client's API version (an
    /// update when the id is HubSpot's own, an upsert otherwise), or v1 `createOrUpdate` for a
    /// contact by email where the version is `Legacy` (v1 knows only email).
    pub(super) async fn create_or_update_on<L: Log + ?Sized>(
        &self,
        http: &dyn Exchange,
        object: &ObjectType,
        id: &str,
        id_property: &str,
        properties: &[(String, String)],
        log: &L,
    ) -> Result<Landed> {
        self.log_paths(log);
        let by_email = id_property == "email" && object.is_contacts();
        let answer = match &self.api {
            ApiVersion::Legacy if by_email => {
                let url = api::v1_upsert_url(&self.base_url, id);
                let body = Some(api::v1_upsert_body(properties));
                self.request(http, reqwest::Method::POST, &url, body, log, None)
                    .await
                    .map(|answer| (api::parse_v1_upsert(&answer.body), answer))
            }
            version => {
                // No date-versioned single upsert exists: a batch of one does the same.
                let input = BatchInput {
                    id: id.to_owned(),
                    properties: properties.to_vec(),
                    links: Vec::new(),
                };
                let (url, body) = match id.parse::<i64>() {
                    Ok(object_id) if id_property == api::OBJECT_ID => (
                        api::batch_update_url(&self.base_url, version, object),
                        api::v3_batch_update_body([("0", object_id, &input)]),
                    ),
                    _ => (
                        api::batch_upsert_url(&self.base_url, version, object),
                        api::v3_batch_upsert_body(id_property, [("0", &input)]),
                    ),
                };
                self.request(http, reqwest::Method::POST, &url, Some(body), log, None)
                    .await
                    .map_err(|e| self.explain_404(version, e))
                    .and_then(|answer| self.batch_of_one(answer))
            }
        };
        match answer {
            Ok((outcome, answer)) => outcome.ok_or_else(|| {
                Error::from(ApiError::not_understood(
                    answer.status,
                    answer.correlation_id,
                    &answer.body,
                    "the upsert",
                    "",
                ))
            }),
            // A batch's 400 may name only the first refused value (v1's names each): the
            // definitions (read once, as bulk runs read them) show the others.
            Err(Error::Api(e))
                if e.kind == ApiErrorKind::Validation
                    && properties.len() > e.errors.len()
                    && !(by_email && self.api == ApiVersion::Legacy) =>
            {
                let more = match self.definitions_on(http, object, log).await {
                    Ok(Some(schema)) => properties
                        .iter()
                        .filter_map(|(name, value)| schema.check(name, value))
                        .collect(),
                    _ => Vec::new(),
                };
                Err(Error::Api(Box::new(e.with_refused(more))))
            }
            Err(Error::Api(mut e)) => {
                if e.conflicting_email.is_none() && e.status == 409 {
                    e.conflicting_email = properties
                        .iter()
                        .find(|(name, _)| name == "email")
                        .map(|(_, value)| value.clone());
                }
                Err(Error::Api(e))
            }
            Err(other) => Err(other),
        }
    }
}
