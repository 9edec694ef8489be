//! hubspot-upsert's native core: creates or updates HubSpot contacts.
//!
//! Everything but `python/` is plain Rust that knows nothing of Python and is tested with
//! `cargo test`, in the order data flows: what the caller lends a call (`context`); the rules for property values (`value`) and email
//! addresses (`email`); the portal's property definitions (`schema`); the bulk planner that
//! forms batches and learns from HubSpot's answers (`planner`) and the driver that runs it
//! (`bulk`); HubSpot's wire formats (`api`) and errors (`error`); the retry policy (`retry`),
//! rate pacing (`pacing`), the per-process transport (`transport`) and the HTTP client
//! (`client`). `python/` is the binding layer that
//! the `hubspot_upsert._native` extension module is made of.

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
// The binding: Python values in, outcomes and exceptions out.
mod python;
