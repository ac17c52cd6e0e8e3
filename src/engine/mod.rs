//! The engine: executes a [`plan::QueryPlan`] over Parquet and returns aggregated Arrow
//! record batches plus scan statistics (DESIGN §5).

pub mod plan;
