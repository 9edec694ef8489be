//! What a client reads of the portal itself: its contact property definitions, read once,
//! trusted for [`DEFINITIONS_TTL`], forgotten when HubSpot contradicts them; the check of
//! records against them without sending (`check_many`); and the portal's id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Client, Hooks, Level, Log};
use crate::api;
use crate::bulk;
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::transport::Exchange;

/// How long the portal's property definitions are trusted before they are read again.
pub(crate) const DEFINITIONS_TTL: Duration = Duration::from_secs(600);

/// What the client knows of the portal's property definitions.
#[derive(Debug, Default)]
pub(super) enum Definitions {
    #[default]
    Unknown,
    Known {
        schema: Arc<Schema>,
        read_at: Instant,
    },
    /// The token lacks the scope to read them (403): not asked again.
    NoScope,
    /// Reading them failed otherwise; asked again after [`DEFINITIONS_TTL`].
    Unreadable { since: Instant },
}

impl Client {
    /// The portal's contact property definitions, read once and kept for [`DEFINITIONS_TTL`].
    /// `None` when the token may not read them (403) or reading failed: records are then
    /// checked by HubSpot's answers alone. A refused token or an interrupt is an error.
    pub(crate) fn property_definitions(
        &self,
        object: &api::ObjectType,
        hooks: &dyn Hooks,
    ) -> Result<Option<Arc<Schema>>> {
        let lease = self.transports.lease()?;
        self.run(
            &lease.handle,
            self.definitions_on(&lease.http, object, hooks),
            hooks,
        )?
    }

    /// [`Client::property_definitions`] through `http`, on the runtime: what a single upsert
    /// refused by HubSpot reads (both faces' one path).
    pub(super) async fn definitions_on<L: Log + ?Sized>(
        &self,
        http: &dyn Exchange,
        object: &api::ObjectType,
        hooks: &L,
    ) -> Result<Option<Arc<Schema>>> {
        {
            let known = self.definitions.lock().unwrap_or_else(|p| p.into_inner());
            match known.get(object).unwrap_or(&Definitions::Unknown) {
                Definitions::Known { schema, read_at } if read_at.elapsed() < DEFINITIONS_TTL => {
                    return Ok(Some(schema.clone()))
                }
                Definitions::NoScope => return Ok(None),
                Definitions::Unreadable { since } if since.elapsed() < DEFINITIONS_TTL => {
                    return Ok(None)
                }
                _ => {}
            }
        }
        let url = api::properties_url(&self.base_url, &self.api, object);
        let answer = self
            .request(http, reqwest::Method::GET, &url, None, hooks, None)
            .await;
        let (now_known, schema) = match answer {
            Ok(answer) => match Schema::from_json(&answer.body) {
                Some(schema) => {
                    let schema = schema.of_object(object.name());
                    let schema = Arc::new(schema);
                    let read_at = Instant::now();
                    (
                        Definitions::Known {
                            schema: schema.clone(),
                            read_at,
                        },
                        Some(schema),
                    )
                }
                None => {
                    hooks.log(
                        Level::Warning,
                        "HubSpot's property definitions were not understood; records are checked by HubSpot's answers instead",
                    );
                    (
                        Definitions::Unreadable {
                            since: Instant::now(),
                        },
                        None,
                    )
                }
            },
            Err(Error::Api(e)) if e.status == 403 => {
                if hooks.enabled(Level::Info) {
                    hooks.log(
                        Level::Info,
                        "the access token may not read the portal's property definitions (scope crm.schemas.contacts.read); records are checked by HubSpot's answers instead",
                    );
                }
                (Definitions::NoScope, None)
            }
            Err(Error::Api(e)) if e.status == 401 => return Err(Error::Api(e)),
            // No such object type in the portal: nothing of this run can land.
            Err(Error::Api(e)) if e.summary.contains("Unable to infer object type") => {
                return Err(Error::Api(e))
            }
            Err(e @ Error::Api(_)) if matches!(&e, Error::Api(a) if a.status == 404) => {
                return Err(self.explain_404(&self.api, e))
            }
            Err(e @ Error::Caller { .. }) => return Err(e),
            Err(other) => {
                if hooks.enabled(Level::Warning) {
                    hooks.log(
                        Level::Warning,
                        &format!("HubSpot's property definitions could not be read ({}); records are checked by HubSpot's answers instead", other.brief()),
                    );
                }
                (
                    Definitions::Unreadable {
                        since: Instant::now(),
                    },
                    None,
                )
            }
        };
        self.definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(object.clone(), now_known);
        Ok(schema)
    }

    /// The id of the portal the credentials belong to (`portalId` of the account details),
    /// read once per client: a sync state keeps each portal's records apart by it.
    pub fn portal_id(&self, hooks: &dyn Hooks) -> Result<i64> {
        if let Some(id) = *self.portal.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(id);
        }
        let url = format!("{}{}", self.base_url, self.api.account_path());
        let answer = self.request_blocking(reqwest::Method::GET, &url, None, hooks)?;
        let id = api::portal_id(&answer.body).ok_or_else(|| {
            Error::from(crate::error::ApiError::not_understood(
                answer.status,
                answer.correlation_id.clone(),
                &answer.body,
                "the account details request",
                " (no portalId)",
            ))
        })?;
        *self.portal.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        Ok(id)
    }

    /// Forgets an object type's property definitions, so that the next run reads them again.
    pub(crate) fn forget_definitions(&self, object: &api::ObjectType) {
        let mut known = self.definitions.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(known.get(object), Some(Definitions::Known { .. })) {
            known.remove(object);
        }
    }
}

impl Client {
    /// Checks every record `source` gives as [`Client::create_or_update_many`] would before sending, and
    /// sends nothing: only records the portal's property definitions refuse reach `sink`.
    /// `definitions`: read them (one request, kept as for bulk runs); else nothing is checked
    /// beyond what the source did.
    pub fn check_many(
        &self,
        source: &mut dyn bulk::Source,
        sink: &mut dyn bulk::Sink,
        hooks: &dyn Hooks,
        definitions: bool,
        matching: &crate::planner::Matching,
        ledger: &mut dyn crate::state::Ledger,
    ) -> Result<()> {
        let schema = if definitions {
            self.property_definitions(&matching.object, hooks)?
        } else {
            None
        };
        bulk::check(source, sink, schema.as_deref(), matching, ledger)
    }
}
