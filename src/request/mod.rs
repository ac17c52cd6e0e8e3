//! Resolution: typed ASTs from the grammars checked against the catalog, producing the
//! inputs of planning (DESIGN §2). Also the dimension-row source shared by the values
//! endpoint, filter resolution and annotation.

pub mod data;
pub mod errors;
pub mod meta;
pub mod params;
pub mod values;

use crate::grammar::format::Format;
use crate::grammar::paging::Paging;
use serde::{Deserialize, Serialize};

/// The parameters that choose how an answer is presented, not what it is: a share link's
/// holder may change them, and they are no part of an answer's name (the cache key).
pub const PRESENTATION_PARAMS: [&str; 5] = ["format", "page", "perPage", "filename", "csvDates"];

/// How an answer is presented, apart from what it is: the same meaning ([`data::DataRequest`])
/// in another format, page or file name is the same answer, computed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    pub format: Format,
    pub paging: Option<Paging>,
    /// The `filename` asked for (a download), if any.
    pub filename: Option<String>,
    /// `csvDates=spreadsheet`: CSV dates spelled so that spreadsheets import them as dates.
    pub spreadsheet_dates: bool,
}

impl Presentation {
    /// Reads the presentation parameters (format with its `Accept` fallback, paging,
    /// filename).
    pub fn read(params: &params::Params, accept: Option<&str>) -> Result<Presentation, crate::error::Error> {
        Ok(Presentation {
            format: params.format(accept)?,
            paging: params.paging()?,
            filename: params.filename().map(str::to_string),
            spreadsheet_dates: params.spreadsheet_dates()?,
        })
    }
}

pub use values::{clause_matches, dimension_rows};
