//! The URL grammars: one pure module per query parameter (DESIGN §2, §9).
//!
//! Each module exposes `parse(&str) -> Result<Ast, Error>` with no catalog access and no I/O;
//! its error type carries the offending text and renders to the spec's message (as amended by
//! DESIGN §7). Resolution against the catalog happens later, in `request`.

pub mod async_after;
pub mod datetime;
pub mod filters;
pub mod format;
pub mod having;
pub mod metrics;
pub mod paging;
#[cfg(test)]
mod props;
pub mod show;
pub mod sort;
pub mod tokens;
pub mod topn;
