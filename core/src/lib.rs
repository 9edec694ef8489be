//! hubspot-upsert's core: creates or updates HubSpot records, and knows nothing of Python.
//!
//! In the order data flows: what the caller lends a call (`context`); the rules for property
//! values (`value`) and email addresses (`email`); the portal's property definitions (`schema`);
//! the bulk planner that forms batches and learns from HubSpot's answers (`planner`) and the
//! driver that runs it (`bulk`); what a sync state remembers (`state`); HubSpot's wire formats
//! (`api`) and errors (`error`); the retry policy (`retry`), rate pacing (`pacing`), the
//! per-process transport (`transport`), OAuth (`auth`) and the HTTP client (`client`). The
//! binding crate at the repository's root makes the `hubspot_upsert._native` module of it.

// What a caller lends every call: a logger and a way to stop waits.
pub mod context;
// A record's values become HubSpot text.
pub mod email;
pub mod value;
// Batches are planned, checked against the portal's definitions, and driven.
pub mod schema;
pub mod planner;
pub mod bulk;
// What HubSpot accepted before, and the journal of a run: sends only what changed.
pub mod state;
// HubSpot's paths, bodies and errors; requests paced, retried and sent.
pub mod api;
pub mod error;
pub mod retry;
pub mod pacing;
mod transport;
pub mod auth;
pub mod client;
