//! Archiving records by HubSpot id: what a mirror run does last, for the records its sync
//! state wrote and its complete source no longer has. A batch archive per 100 ids, paced and
//! retried as every request; HubSpot answers 204 and keeps archived records restorable for 90
//! days.

use std::sync::Arc;

use super::{Client, Hooks, Log};
use crate::api::{self, ObjectType};
use crate::error::{Error, Result};

/// What an archive did: the ids archived, and those that were not, each with why.
#[derive(Debug, Default)]
pub struct Archived {
    pub archived: Vec<i64>,
    pub failed: Vec<(i64, Error)>,
}

impl Client {
    /// Archives the `object` records with these HubSpot ids, 100 a request (the first alone:
    /// a refusal of all, a missing scope say, costs one request). An `Err` only when the
    /// caller's hooks stopped it; the archives answered so far stay made.
    pub fn archive(
        self: &Arc<Self>,
        object: &ObjectType,
        ids: &[i64],
        hooks: &dyn Hooks,
        log: Arc<dyn Log>,
    ) -> Result<Archived> {
        let url = format!("{}{}", self.base_url, self.api.batch_archive_path(object));
        let calls: Vec<(String, Vec<u8>)> = ids
            .chunks(api::V3_BATCH_MAX)
            .map(|chunk| (url.clone(), api::archive_body(chunk)))
            .collect();
        let answers = self.send_all(calls, hooks, &log)?;
        let failed = super::associations::unanswered(ids, answers);
        let unarchived: std::collections::HashSet<i64> = failed.iter().map(|(id, _)| *id).collect();
        let archived = ids
            .iter()
            .filter(|id| !unarchived.contains(id))
            .copied()
            .collect();
        Ok(Archived { archived, failed })
    }
}
