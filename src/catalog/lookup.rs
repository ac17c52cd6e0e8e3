//! Dimension lookups: the fields of each key, loaded once from a CSV or Parquet file.

use arrow::array::{Array, AsArray, RecordBatchReader};
use arrow::datatypes::DataType;
use std::collections::HashMap;
use std::path::Path;

/// Rows of a dimension keyed by key value; each row holds one string per dimension field
/// (field 0 is the key itself). Rows are kept sorted by key for listings.
#[derive(Debug, Clone, Default)]
pub struct LookupTable {
    keys: Vec<String>,
    rows: Vec<Vec<String>>,
    index: HashMap<String, usize>,
}

impl LookupTable {
    /// Builds a table from `(key, fields)` rows; later duplicates of a key are ignored.
    pub fn from_rows(mut rows: Vec<Vec<String>>) -> LookupTable {
        rows.sort_by(|a, b| a[0].cmp(&b[0]));
        rows.dedup_by(|b, a| a[0] == b[0]);
        let keys: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
        let index = keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        LookupTable { keys, rows, index }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of a key (fields in dimension order).
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.index.get(key).map(|&i| self.rows[i].as_slice())
    }

    /// All rows, sorted by key.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// The lookup column feeding one dimension field.
#[derive(Debug, Clone)]
pub struct LookupColumn {
    pub name: String,
    /// A missing required column is an error; a missing optional one leaves the field empty.
    pub required: bool,
}

/// Loads a lookup file. `columns[i]` feeds dimension field `i`; `columns[0]` is the key.
pub fn load(path: &Path, columns: &[LookupColumn], null_values: &[String]) -> Result<LookupTable, String> {
    let is_parquet = path.extension().is_some_and(|e| e == "parquet");
    let table = if is_parquet { load_parquet(path)? } else { load_csv(path)? };
    let (header, body) = table;
    let mut idx = Vec::with_capacity(columns.len());
    for c in columns {
        match header.iter().position(|h| *h == c.name) {
            Some(i) => idx.push(Some(i)),
            None if !c.required => idx.push(None),
            None => {
                return Err(format!(
                    "column '{}' is not in lookup {} (columns: {})",
                    c.name,
                    path.display(),
                    header.join(", ")
                ));
            }
        }
    }
    let rows = body
        .into_iter()
        .map(|r| {
            idx.iter()
                .map(|i| match i {
                    Some(i) => {
                        let v = r.get(*i).cloned().unwrap_or_default();
                        if null_values.contains(&v) { String::new() } else { v }
                    }
                    None => String::new(),
                })
                .collect()
        })
        .collect();
    Ok(LookupTable::from_rows(rows))
}

type Cells = (Vec<String>, Vec<Vec<String>>);

fn load_csv(path: &Path) -> Result<Cells, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("cannot read lookup {}: {e}", path.display()))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("cannot read header of {}: {e}", path.display()))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        rows.push(rec.iter().map(|s| s.to_string()).collect());
    }
    Ok((header, rows))
}

fn load_parquet(path: &Path) -> Result<Cells, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| format!("{} is not a readable Parquet file: {e}", path.display()))?;
    let schema = reader.schema();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let cols: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &DataType::Utf8))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for r in 0..batch.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        let s = c.as_string::<i32>();
                        if s.is_null(r) { String::new() } else { s.value(r).to_string() }
                    })
                    .collect(),
            );
        }
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lookup_maps_fields_and_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        std::fs::write(&p, "code,name,speed\nB,Beta,NA\nA,\"Alpha, Inc.\",12\n").unwrap();
        let col = |n: &str, required| LookupColumn { name: n.to_string(), required };
        let cols = vec![col("code", true), col("name", true), col("speed", true), col("absent", false)];
        let t = load(&p, &cols, &["NA".to_string()]).unwrap();
        assert_eq!(t.keys(), ["A", "B"]);
        assert_eq!(t.get("A").unwrap(), ["A", "Alpha, Inc.", "12", ""]);
        assert_eq!(t.get("B").unwrap()[2], "");
        let e = load(&p, &[col("nope", true)], &[]).unwrap_err();
        assert!(e.contains("column 'nope' is not in lookup"), "{e}");
    }
}
