//! hubspot-upsert's native core: creates or updates HubSpot contacts.
//!
//! Everything but `python/` is plain Rust that knows nothing of Python and is tested with
//! `cargo test`: the rules for property values (`value`), email addresses (`email`), HubSpot's
//! wire formats (`api`), its errors (`error`), the retry policy (`retry`), rate pacing
//! (`pacing`) and the HTTP client (`client`). `python/` is the
//! binding layer that the `hubspot_upsert._native` extension module is made of.

pub mod api;
pub mod client;
pub mod email;
pub mod error;
pub mod pacing;
pub mod retry;
pub mod value;

mod python;
