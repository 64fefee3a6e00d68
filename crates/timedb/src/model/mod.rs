//! Domain types of timedb: tenants, series, runs, value versions, reads and updates.
//!
//! Every type here is built through a parsing constructor, so code downstream never
//! re-checks a value (a `SeriesKey` is always trimmed and non-empty, a `ValueQuery`
//! always has a consistent window). The types know nothing of SQL or HTTP.

mod auth;
mod error;
mod ids;
mod read;
mod run;
mod series;
pub mod time;
mod update;

pub use auth::{
    Email, KeyId, KeyLookup, KeyRecord, KeyStatus, NewKey, RateLimit, Role, Scopes, TenantScope, UsageDelta, User,
    Window,
};
pub use error::ModelError;
pub use ids::{RunId, SeriesId, TenantId, ValueId};
pub use read::{ReadMode, SeriesInfo, SeriesSelector, ValueQuery, ValueRecord};
pub use run::{
    NewRun, NewValue, RowInput, Run, RunFilter, RunReceipt, SeriesRef, Tags, WorkflowId, canonical_annotation,
};
pub use series::{Labels, Series, SeriesFilter, SeriesKey, SeriesSpec, Unit, parse_description};
pub use time::Timestamp;
pub use update::{Patch, UpdateOutcome, UpdateReport, ValueAddress, ValueUpdate};
