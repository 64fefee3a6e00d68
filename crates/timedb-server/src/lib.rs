//! The timedb service: the HTTP API ([`http`]) and the `timedb` command line ([`cli`]).
//!
//! A request flows `http` (routes, extractors, error → status) → store (from the `timedb`
//! crate, a trait with one module per backend) → model. The CLI talks to the store
//! directly for operator commands and starts the HTTP server for `timedb api`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
