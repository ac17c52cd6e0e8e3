//! Resolution: typed ASTs from the grammars checked against the catalog, producing the
//! inputs of planning (DESIGN §2). Also the dimension-row source shared by the values
//! endpoint, filter resolution and annotation.

pub mod data;
pub mod values;

pub use values::{clause_matches, dimension_rows};
