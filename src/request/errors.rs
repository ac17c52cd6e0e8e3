//! The resolution errors data and metadata requests share, with Fili's texts (spec §6).

use crate::error::{Error, Reason, java_list};

/// `Dimension(s) '[a, b]' do not exist.`
pub fn dimensions_undefined<T: AsRef<str>>(names: &[T]) -> Error {
    Error::new(Reason::DimensionUndefined, format!("Dimension(s) '{}' do not exist.", java_list(names)))
}

/// `Requested dimension(s) '[a]' are not supported by the table 't'.`
pub fn dimensions_not_in_table<T: AsRef<str>>(names: &[T], table: &str) -> Error {
    Error::new(
        Reason::DimensionNotInTable,
        format!("Requested dimension(s) '{}' are not supported by the table '{table}'.", java_list(names)),
    )
}

/// `Metric(s) '[m]' do not exist.`
pub fn metrics_undefined<T: AsRef<str>>(names: &[T]) -> Error {
    Error::new(Reason::MetricUndefined, format!("Metric(s) '{}' do not exist.", java_list(names)))
}

/// `Filter dimension field 'f' is not supported by the dimension 'd'.`
pub fn filter_field_undefined(field: &str, dimension: &str) -> Error {
    Error::new(
        Reason::FilterFieldUndefined,
        format!("Filter dimension field '{field}' is not supported by the dimension '{dimension}'."),
    )
}
