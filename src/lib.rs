//! quiver: a Fili-compatible, URL-driven OLAP gateway over Parquet.
//!
//! A request flows through these modules (DESIGN §2):
//! `http` (connections, then routing) → `grammar` (pure parsers of each URL parameter) → `request`
//! (resolution against the `catalog`) → `plan` (physical table choice) → `engine`
//! (vectorized Arrow aggregation over Parquet) → `response` (json, jsonapi, csv, debug).
//! `error` holds the single error model every endpoint renders; `time` the zoned grain
//! arithmetic shared by the grammar and the engine.

pub mod access;
pub mod app;
pub mod auth;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod datafile;
pub mod digest;
pub mod distributed;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod expr;
pub mod grammar;
pub mod http;
pub mod init;
pub mod inspect;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod plan;
pub mod query;
pub mod request;
pub mod response;
pub mod rollup;
pub mod share;
pub mod snapshot;
pub mod time;
pub mod tpch;
pub mod workers;
