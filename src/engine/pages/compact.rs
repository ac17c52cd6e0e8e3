//! Chunks kept by the chunk cache in a smaller form. Writers that leave dictionaries off for
//! numbers (Polars' default, pyarrow's `use_dictionary=False`) store `quantity` or `discount`
//! as 8 bytes a row although they hold a few dozen values. Before such a chunk enters the
//! cache it is re-encoded the way a dictionary-encoding writer would have written it: a
//! PLAIN dictionary page, then each data page's values as bit-packed dictionary indices
//! (definition levels untouched). The page decoder reads the result like any dictionary chunk;
//! a 50-value column then takes 6 bits a row in memory instead of 64.

use bytes::Bytes;
use parquet::basic::{Encoding, Type as Phys};
use parquet::column::page::Page;
use rustc_hash::FxHashMap;

/// Most distinct values a re-encoded chunk may have.
const MAX_DISTINCT: usize = 1 << 16;

/// `pages` re-encoded with a dictionary when they are PLAIN fixed-width numbers with few
/// distinct values (at most one for every four values); otherwise `pages` unchanged.
/// `has_def`: the column has definition levels (V1 pages then start with them).
pub fn compact(pages: Vec<Page>, phys: Phys, has_def: bool) -> Vec<Page> {
    let width = match phys {
        Phys::INT32 | Phys::FLOAT => 4,
        Phys::INT64 | Phys::DOUBLE => 8,
        _ => return pages,
    };
    let mut starts = Vec::with_capacity(pages.len());
    for p in &pages {
        match values_start(p, has_def) {
            Some(s) if (p.buffer().len() - s) % width == 0 => starts.push(s),
            _ => return pages,
        }
    }
    let total: usize = pages.iter().zip(&starts).map(|(p, s)| (p.buffer().len() - s) / width).sum();
    let Some((index_len, dict, codes)) = dictionary(&pages, &starts, width, MAX_DISTINCT.min(total / 4)) else {
        return pages;
    };
    let bw = (32 - (index_len.max(2) as u32 - 1).leading_zeros()) as u8;
    let mut out = Vec::with_capacity(pages.len() + 1);
    out.push(Page::DictionaryPage {
        buf: Bytes::from(dict),
        num_values: index_len as u32,
        encoding: Encoding::PLAIN,
        is_sorted: false,
    });
    for ((p, s), c) in pages.into_iter().zip(starts).zip(codes) {
        let mut buf = p.buffer()[..s].to_vec();
        buf.push(bw);
        bit_pack(&c, bw, &mut buf);
        out.push(with_indices(p, Bytes::from(buf)));
    }
    out
}

/// The distinct values (PLAIN bytes, in order of appearance) and each page's codes; `None` as
/// soon as there are more than `limit` distinct values.
fn dictionary(pages: &[Page], starts: &[usize], width: usize, limit: usize) -> Option<(usize, Vec<u8>, Vec<Vec<u32>>)> {
    let mut index: FxHashMap<u64, u32> = FxHashMap::default();
    let mut dict: Vec<u8> = Vec::new();
    let mut codes = Vec::with_capacity(pages.len());
    for (p, &s) in pages.iter().zip(starts) {
        let mut page_codes = Vec::with_capacity((p.buffer().len() - s) / width);
        for raw in p.buffer()[s..].chunks_exact(width) {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(raw);
            let key = u64::from_le_bytes(b);
            let code = match index.get(&key) {
                Some(&c) => c,
                None if index.len() >= limit => return None,
                None => {
                    let c = index.len() as u32;
                    index.insert(key, c);
                    dict.extend_from_slice(raw);
                    c
                }
            };
            page_codes.push(code);
        }
        codes.push(page_codes);
    }
    Some((index.len(), dict, codes))
}

/// Where a data page's values begin; `None` for anything but a PLAIN data page.
fn values_start(p: &Page, has_def: bool) -> Option<usize> {
    match p {
        Page::DataPage { buf, encoding: Encoding::PLAIN, .. } => {
            if !has_def {
                return Some(0);
            }
            let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
            (4 + len <= buf.len()).then_some(4 + len)
        }
        Page::DataPageV2 { buf, encoding: Encoding::PLAIN, def_levels_byte_len, rep_levels_byte_len, .. } => {
            let s = (*def_levels_byte_len + *rep_levels_byte_len) as usize;
            (s <= buf.len()).then_some(s)
        }
        _ => None,
    }
}

/// The same data page with `buf` (its levels, then dictionary indices).
fn with_indices(p: Page, buf: Bytes) -> Page {
    match p {
        Page::DataPage { num_values, def_level_encoding, rep_level_encoding, statistics, .. } => Page::DataPage {
            buf,
            num_values,
            encoding: Encoding::RLE_DICTIONARY,
            def_level_encoding,
            rep_level_encoding,
            statistics,
        },
        Page::DataPageV2 {
            num_values,
            num_nulls,
            num_rows,
            def_levels_byte_len,
            rep_levels_byte_len,
            statistics,
            ..
        } => Page::DataPageV2 {
            buf,
            num_values,
            encoding: Encoding::RLE_DICTIONARY,
            num_nulls,
            num_rows,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed: false,
            statistics,
        },
        other => other,
    }
}

/// Appends `codes` as one bit-packed run of the RLE / bit-packed hybrid encoding (groups of
/// eight values, least significant bit first; the last group padded with zeros).
fn bit_pack(codes: &[u32], bw: u8, out: &mut Vec<u8>) {
    let groups = codes.len().div_ceil(8);
    let mut header = ((groups as u64) << 1) | 1;
    while header >= 0x80 {
        out.push((header as u8) | 0x80);
        header >>= 7;
    }
    out.push(header as u8);
    let (mut acc, mut bits) = (0u64, 0u32);
    for i in 0..groups * 8 {
        acc |= u64::from(codes.get(i).copied().unwrap_or(0)) << bits;
        bits += u32::from(bw);
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_packing_round_trips_through_the_decoder() {
        for bw in 1..=16u8 {
            let codes: Vec<u32> = (0..1000u32).map(|i| (i * 7919) % (1 << bw)).collect();
            let mut buf = vec![bw];
            bit_pack(&codes, bw, &mut buf);
            let mut h = super::super::hybrid::Hybrid::new(1, bw as usize).unwrap();
            let mut got = Vec::new();
            h.read(&buf, codes.len(), &mut got).unwrap();
            assert_eq!(got, codes, "bit width {bw}");
        }
    }

    #[test]
    fn plain_numbers_with_few_values_get_a_dictionary_and_others_stay() {
        let plain = |vals: &[f64]| Page::DataPage {
            buf: Bytes::from(vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
            num_values: vals.len() as u32,
            encoding: Encoding::PLAIN,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let few: Vec<f64> = (0..400).map(|i| (i % 5) as f64).collect();
        let out = compact(vec![plain(&few), plain(&few[..100])], Phys::DOUBLE, false);
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], Page::DictionaryPage { num_values: 5, .. }));
        assert!(matches!(&out[1], Page::DataPage { encoding: Encoding::RLE_DICTIONARY, num_values: 400, .. }));
        // 400 values of 3 bits: a bit width byte, a 1-byte run header (50 groups) and 150 bytes.
        assert_eq!(out[1].buffer().len(), 1 + 1 + 150);
        let many: Vec<f64> = (0..400).map(|i| i as f64).collect();
        let kept = compact(vec![plain(&many)], Phys::DOUBLE, false);
        assert!(matches!(&kept[0], Page::DataPage { encoding: Encoding::PLAIN, .. }));
    }
}
