//! The binding: the `hubspot_upsert._native` extension module, made of the core crate
//! (`core/`, `hubspot_upsert_core`: plain Rust that knows nothing of Python, tested with
//! `cargo test`). Python values in, the core's outcomes and errors out as Python objects and
//! exceptions. The core's modules are named here as the binding uses them.

// The core's `Error` (an API error carries HubSpot's answer) passes through the binding's
// closures unboxed, as the core returns it; clippy weighs it only where it is not exported.
#![allow(clippy::result_large_err)]

pub use hubspot_upsert_core::{
    api, auth, bulk, client, context, email, error, pacing, planner, retry, schema, state, value,
};

mod python;
