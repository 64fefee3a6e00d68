//! timedb core: the domain model of revised time series and the storage layer.
//!
//! The crate is split the way a request flows through the service, innermost first:
//! [`model`] holds plain domain types that can only exist valid (parsed once, at the edge),
//! and [`store`] holds the [`store::Store`] trait with one module per backend. Nothing here
//! knows about HTTP; the server crate translates requests into these types and back.
//! [`Database`] (in [`database`]) is the embedded API on top: the HTTP API's operations on
//! a local store, for Rust programs that want timedb as a library rather than a server.

pub mod database;
pub mod model;
pub mod store;

pub use database::Database;
pub use model::TenantId;
pub use store::{Store, StoreError};

#[cfg(feature = "testing")]
pub mod testing;
