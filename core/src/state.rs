//! A sync state, as the bulk driver sees it: what HubSpot last accepted for each record (a
//! fingerprint of the properties written, and the object's id), and a journal of the batches
//! sent and answered. The store itself (SQLite, PostgreSQL) is the caller's: the driver asks it
//! through [`Ledger`], in batches, and never holds more than the records in flight.
//!
//! A record whose fingerprint equals the one stored for its id is not sent: it is unchanged.
//! Only writes HubSpot accepted are stored, in the same step that hands their outcomes on, so a
//! run stopped at any point (a kill included) leaves a state that says exactly which records
//! landed; the next run sends the others again.

use sha2::{Digest, Sha256};

use crate::api::BatchInput;
use crate::error::Result;
use crate::planner::BatchId;

/// A digest of what a record writes: its properties, whatever their order (128 bits of
/// SHA-256 over each name and value, length-prefixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    pub(crate) fn of(input: &BatchInput) -> Fingerprint {
        let mut properties: Vec<&(String, String)> = input.properties.iter().collect();
        properties.sort_unstable();
        let mut digest = Sha256::new();
        for (name, value) in properties {
            for text in [name, value] {
                digest.update((text.len() as u64).to_le_bytes());
                digest.update(text.as_bytes());
            }
        }
        // The keys of the records it is associated with, after a length no text has: a
        // record without any keeps the fingerprint it always had.
        for link in &input.links {
            digest.update(u64::MAX.to_le_bytes());
            digest.update((link.len() as u64).to_le_bytes());
            digest.update(link.as_bytes());
        }
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest.finalize()[..16]);
        Fingerprint(bytes)
    }

    /// 32 lower-case hex digits, as stores keep it.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Fingerprint> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Fingerprint(bytes))
    }
}

/// What the state holds for one id: the fingerprint of the last write HubSpot accepted, and
/// the object it landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub fingerprint: Fingerprint,
    pub object_id: i64,
}

/// A write HubSpot accepted, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id as ids compare (see [`crate::planner::Matching::key`]).
    pub key: String,
    pub fingerprint: Fingerprint,
    pub object_id: i64,
}

/// A store of what HubSpot accepted, and a journal of batches. An error stops the run (nothing
/// more is sent); the store keeps what it committed.
pub trait Ledger {
    /// Whether the run consults and keeps a state at all (fingerprints are made only then).
    fn active(&self) -> bool;
    /// What the state holds for each key, in the same order (None: nothing, or the run sends
    /// everything anew).
    fn recall(&mut self, keys: &[String]) -> Result<Vec<Option<Held>>>;
    /// Batch `batch` of `records` records is about to be sent (committed before it goes out).
    fn sent(&mut self, batch: BatchId, records: usize) -> Result<()>;
    /// The answer to `batch` (None: outcomes decided without one) and the writes it accepted,
    /// committed together.
    fn answered(&mut self, batch: Option<BatchId>, accepted: &[Accepted]) -> Result<()>;
    /// Forgets what is held for these keys (writes whose associations failed afterwards), so
    /// that the next run sends them again.
    fn forget(&mut self, keys: &[String]) -> Result<()>;
    /// Stores, for each key, the record of object type `to` it is now associated with (None:
    /// none), and returns what was stored before (None: nothing): the associations the state
    /// made that are no longer true are then removed.
    fn relink(&mut self, _to: &str, links: &[(String, Option<i64>)]) -> Result<Vec<Option<i64>>> {
        Ok(vec![None; links.len()])
    }
}

/// No state: everything is sent, nothing is kept (the driver's tests; the binding passes its
/// own ledger, inactive when the caller gave no state).
#[cfg(test)]
pub(crate) struct Stateless;

#[cfg(test)]
impl Ledger for Stateless {
    fn active(&self) -> bool {
        false
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

    fn forget(&mut self, _: &[String]) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(properties: &[(&str, &str)]) -> BatchInput {
        BatchInput {
            id: "a@b.test".into(),
            properties: properties
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            links: Vec::new(),
        }
    }

    #[test]
    fn a_fingerprint_ignores_order_and_tells_values_apart() {
        let a = Fingerprint::of(&input(&[("firstname", "Ada"), ("city", "London")]));
        let b = Fingerprint::of(&input(&[("city", "London"), ("firstname", "Ada")]));
        assert_eq!(a, b);
        assert_ne!(a, Fingerprint::of(&input(&[("firstname", "Ada")])));
        // Names and values cannot run into each other.
        assert_ne!(
            Fingerprint::of(&input(&[("ab", "c")])),
            Fingerprint::of(&input(&[("a", "bc")]))
        );
        assert_ne!(
            Fingerprint::of(&input(&[("firstname", "")])),
            Fingerprint::of(&input(&[]))
        );
    }

    #[test]
    fn a_fingerprint_reads_back_from_its_hex() {
        let a = Fingerprint::of(&input(&[("firstname", "Ada")]));
        assert_eq!(a.hex().len(), 32);
        assert_eq!(Fingerprint::from_hex(&a.hex()), Some(a));
        assert_eq!(Fingerprint::from_hex("zz"), None);
        assert_eq!(Fingerprint::from_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn a_fingerprint_is_stable_across_builds() {
        // Stores outlive the program that wrote them: the digest must never change. SHA-256
        // of (9 as u64 LE) "firstname" (3 as u64 LE) "Ada", first 16 bytes.
        assert_eq!(
            Fingerprint::of(&input(&[("firstname", "Ada")])).hex(),
            "fa35fad25d64cc075e8b60d15356a8ff"
        );
        let empty = Fingerprint::of(&input(&[]));
        // The keys of associated records count, apart from any property.
        let mut linked = input(&[("firstname", "Ada")]);
        linked.links = vec!["acme".into()];
        let linked = Fingerprint::of(&linked);
        assert_ne!(linked, Fingerprint::of(&input(&[("firstname", "Ada")])));
        assert_ne!(
            linked,
            Fingerprint::of(&input(&[("firstname", "Ada"), ("acme", "")]))
        );
        // SHA-256 of nothing, first 16 bytes.
        assert_eq!(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb924");
    }
}
