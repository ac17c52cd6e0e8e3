//! A column's values as the page decoder holds them: the local values addressed by local
//! code ([`Vals`]), PLAIN fixed-width numbers and byte arrays as a page stores them,
//! dictionary lookups, and spreading values over the rows that are not null.

use crate::engine::plan::PredOp;
use parquet::basic::Type as Phys;

/// Local code 0 is null; dictionary index `i` is local code `i + 1`.
pub(super) const NULL_LOCAL: u32 = 0;

/// Values addressed by local code: a placeholder for null, the dictionary's entries, then
/// values interned from plain-encoded pages of the same chunk.
pub(super) enum Vals {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Vec<String>),
}

impl Vals {
    pub(super) fn len(&self) -> usize {
        match self {
            Vals::Int(v) => v.len(),
            Vals::Float(v) => v.len(),
            Vals::Str(v) => v.len(),
        }
    }

    /// Whether the value of local code `l` passes `op` (the Arrow path's semantics:
    /// integers in decimal, `in`/`notin` compare integers numerically; null as null).
    pub(super) fn matches(&self, l: usize, op: &PredOp) -> bool {
        if l == NULL_LOCAL as usize {
            return op.matches_text(None);
        }
        match self {
            Vals::Str(v) => op.matches_text(Some(&v[l])),
            Vals::Int(v) => crate::engine::columns::int_matches(op, v[l]),
            Vals::Float(v) => op.matches_text(Some(&v[l].to_string())),
        }
    }

    /// The dimension code of local code `l` (null shares the empty string's code).
    pub(super) fn intern(&self, l: usize, codes: &mut crate::engine::columns::DimCodes) -> u32 {
        if l == NULL_LOCAL as usize {
            return codes.code_str("");
        }
        match self {
            Vals::Str(v) => codes.code_str(&v[l]),
            Vals::Int(v) => codes.code_int(v[l]),
            Vals::Float(v) => codes.code_str(&v[l].to_string()),
        }
    }
}

/// Spreads the values appended to `out` after `start` over the rows of `mask`, putting
/// `fill` at the null rows (walking backwards, so it works in place).
pub(super) fn expand<T: Copy>(out: &mut Vec<T>, start: usize, mask: &[bool], fill: T) {
    let mut vi = out.len() - start;
    out.resize(start + mask.len(), fill);
    for (i, &present) in mask.iter().enumerate().rev() {
        if present {
            vi -= 1;
            out[start + i] = out[start + vi];
        } else {
            out[start + i] = fill;
        }
    }
}

/// `out.push(d[i])` for every index, failing (not panicking) on an index past the
/// dictionary: the bounds check the lookup needs anyway is the validation.
pub(super) fn gather<T: Copy + Default>(d: &[T], idx: &[u32], out: &mut Vec<T>) -> Result<(), String> {
    let mut bad = false;
    out.extend(idx.iter().map(|&i| match d.get(i as usize) {
        Some(v) => *v,
        None => {
            bad = true;
            T::default()
        }
    }));
    if bad {
        return Err(format!("a dictionary index is out of range ({} entries)", d.len()));
    }
    Ok(())
}

/// One PLAIN byte array (4-byte length, then the bytes) as UTF-8.
pub(super) fn byte_array<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a str, String> {
    let len = u32::from_le_bytes(
        buf.get(*pos..*pos + 4).ok_or("a byte array value ends early")?.try_into().unwrap_or([0; 4]),
    ) as usize;
    let bytes = buf.get(*pos + 4..*pos + 4 + len).ok_or("a byte array value ends early")?;
    *pos += 4 + len;
    std::str::from_utf8(bytes).map_err(|_| "a string value is not valid UTF-8".to_string())
}

/// Bytes per PLAIN value of a fixed-width physical type.
pub(super) fn width(phys: Phys) -> usize {
    match phys {
        Phys::INT32 | Phys::FLOAT => 4,
        _ => 8,
    }
}

/// The bytes of one PLAIN value of the numbers the decoder reads; 0 for every other type
/// (booleans are bits, byte arrays carry lengths), whose pages are never cut short.
pub(super) fn fixed_width(phys: Phys) -> usize {
    match phys {
        Phys::INT32 | Phys::FLOAT | Phys::INT64 | Phys::DOUBLE => width(phys),
        _ => 0,
    }
}

/// A numeric value type read from pages: its dictionary entries and PLAIN values.
pub(super) trait Number: Copy + Default {
    fn dict(vals: &Vals) -> Option<&[Self]>;
    /// Appends `n` PLAIN values starting at `pos`.
    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<Self>) -> Result<(), String>;
}

/// The bytes of `n` PLAIN values of type `phys` from `pos`, or an error when the page ends first.
pub(super) fn plain_bytes(buf: &[u8], pos: usize, n: usize, phys: Phys) -> Result<&[u8], String> {
    buf.get(pos..pos + n * width(phys)).ok_or_else(|| "a page ends early".to_string())
}

impl Number for i64 {
    fn dict(vals: &Vals) -> Option<&[i64]> {
        match vals {
            Vals::Int(v) => v.get(1..),
            _ => None,
        }
    }

    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<i64>) -> Result<(), String> {
        let bytes = plain_bytes(buf, pos, n, phys)?;
        if phys == Phys::INT32 {
            out.extend(bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as i64));
        } else {
            out.extend(bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))));
        }
        Ok(())
    }
}

impl Number for f64 {
    fn dict(vals: &Vals) -> Option<&[f64]> {
        match vals {
            Vals::Float(v) => v.get(1..),
            _ => None,
        }
    }

    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<f64>) -> Result<(), String> {
        let bytes = plain_bytes(buf, pos, n, phys)?;
        if phys == Phys::FLOAT {
            out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64));
        } else {
            out.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))));
        }
        Ok(())
    }
}
