//! Decompressing zstd pages with one decompression context per thread.
//!
//! parquet's page reader creates a zstd compression context and a decompression context for
//! every column chunk it opens, and a file with small row groups has hundreds of chunks a
//! query (3.3 % of Q3 on the SF 1 Polars file went to creating them). So zstd chunks are
//! opened as stored ([`stored`]: the page reader then hands out each page's bytes as they are
//! in the file) and [`page`] decompresses them here, with a context the thread keeps.
//!
//! The page reader no longer checks a page's size against its header, so a page's output is
//! bounded by its chunk's decompressed size from the footer (and by 2 GiB, the most a page
//! header can state): a page may not grow past the chunk it belongs to.
//!
//! A reader that needs only the first rows of a page of fixed-width PLAIN values (a one-week
//! query whose rows end early in a DuckDB file's one 8 MB page of prices) has it decompressed
//! only that far ([`page`] with a [`Prefix`]): the frame is streamed block by block straight into the
//! page's buffer and the stream stops once the rows' values are in.

use parquet::basic::{Compression, Encoding};
use parquet::column::page::Page;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::ColumnChunkMetaData;
use std::cell::RefCell;
use std::io::Read;
use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

thread_local! {
    /// This thread's zstd decompression context, created on its first page.
    static CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// This thread's streaming context for a page cut short ([`page`]): it writes straight into the page's
    /// buffer (zstd's stable output buffer), so a cut page costs no copy.
    static STREAM: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// The compressed bytes handed to the stream at a time while a page is cut short (about one
/// block's worth: the stream stops within a block of the rows a reader needs).
const STEP: usize = 64 << 10;

/// What a reader needs of a data page: the values of its first `rows` rows, `width` bytes
/// each (PLAIN, fixed width), after its definition levels when `levels` (a v1 page keeps them,
/// length-prefixed, in its compressed bytes).
#[derive(Clone, Copy, Debug)]
pub struct Prefix {
    /// Rows from the page's first.
    pub rows: usize,
    /// Bytes per value.
    pub width: usize,
    /// Whether a v1 page begins with length-prefixed definition levels.
    pub levels: bool,
}

/// A zstd chunk's metadata with its codec turned off, for a page reader that hands out the
/// stored bytes, and the most a page of it may decompress to; `None` for other codecs, which
/// the page reader decompresses itself.
pub fn stored(chunk: &ColumnChunkMetaData) -> PqResult<Option<(ColumnChunkMetaData, u64)>> {
    if !matches!(chunk.compression(), Compression::ZSTD(_)) {
        return Ok(None);
    }
    // A page header states its size as an i32, so no page is larger whatever the footer says.
    let limit = chunk.uncompressed_size().clamp(0, i32::MAX as i64) as u64;
    let raw = chunk.clone().into_builder().set_compression(Compression::UNCOMPRESSED).build()?;
    Ok(Some((raw, limit)))
}

/// Decompresses a page of a zstd chunk opened by [`stored`]: at most `limit` bytes. A data
/// page of format v2 keeps its levels, which are stored uncompressed ahead of its values.
/// With a `prefix`, a PLAIN data page of one zstd frame stating its size, whose prefix leaves
/// out at least an eighth of its rows, is decompressed only as far as the prefix (to the end
/// of the block holding its last byte). Returns the page and whether it was cut: a cut page
/// holds no value past `prefix.rows` and must not be cached.
pub fn page(mut page: Page, limit: u64, prefix: Option<Prefix>) -> PqResult<(Page, bool)> {
    let rows = page.num_values() as usize;
    let prefix = prefix.filter(|p| {
        !matches!(page, Page::DictionaryPage { .. })
            && page.encoding() == Encoding::PLAIN
            && p.width > 0
            && p.rows.saturating_mul(8) <= rows.saturating_mul(7)
    });
    let cut = match &mut page {
        Page::DataPage { buf, .. } | Page::DictionaryPage { buf, .. } => {
            let (out, cut) = inflate(buf, Vec::new(), limit, prefix)?;
            *buf = out.into();
            cut
        }
        Page::DataPageV2 { buf, def_levels_byte_len, rep_levels_byte_len, is_compressed, .. } if *is_compressed => {
            let levels = (*def_levels_byte_len as usize).saturating_add(*rep_levels_byte_len as usize);
            let (head, values) =
                buf.split_at_checked(levels).ok_or_else(|| bad("its levels are longer than the page"))?;
            // The levels are ahead of the compressed bytes, not in them.
            let (out, cut) = inflate(values, head.to_vec(), limit, prefix.map(|p| Prefix { levels: false, ..p }))?;
            *buf = out.into();
            *is_compressed = false;
            cut
        }
        Page::DataPageV2 { .. } => false,
    };
    Ok((page, cut))
}

impl Prefix {
    /// The decompressed bytes the prefix needs, once `out` (what is out so far) tells: a v1
    /// page's levels' length comes first.
    fn bytes(&self, out: &[u8]) -> Option<usize> {
        let values = self.rows.saturating_mul(self.width);
        if !self.levels {
            return Some(values);
        }
        let len = u32::from_le_bytes(out.get(..4)?.try_into().unwrap_or([0; 4])) as usize;
        Some(values.saturating_add(len).saturating_add(4))
    }
}

/// Appends the decompressed `src` to `out`, failing when the whole would pass `limit` bytes;
/// returns it and whether it stopped at `prefix` (then the frame is left unfinished). One
/// frame that states its size decompresses in one call with the thread's context, or as far as
/// the prefix through its streaming context; other pages (several frames, or no size) stream
/// through a decoder, cut off at the limit.
fn inflate(src: &[u8], mut out: Vec<u8>, limit: u64, prefix: Option<Prefix>) -> PqResult<(Vec<u8>, bool)> {
    // A page with no values may store nothing at all (and a v2 page only its levels).
    if src.is_empty() {
        return Ok((out, false));
    }
    let room = limit.saturating_sub(out.len() as u64);
    let one_frame = zstd::zstd_safe::find_frame_compressed_size(src).is_ok_and(|n| n == src.len());
    let stated = zstd::zstd_safe::get_frame_content_size(src).ok().flatten();
    if let (true, Some(size)) = (one_frame, stated) {
        if size > room {
            return Err(bad(&format!("it states {size} bytes, more than its column chunk's {limit}")));
        }
        let start = out.len();
        out.reserve_exact(size as usize);
        let cut = match prefix {
            Some(p) => stream_prefix(src, &mut out, start, p)?,
            None => whole(src, &mut out).map(|_| false)?,
        };
        let n = out.len() - start;
        if !cut && n as u64 != size {
            return Err(bad(&format!("it decompressed to {n} bytes, not the {size} it states")));
        }
        return Ok((out, cut));
    }
    let start = out.len();
    let decoder = zstd::stream::read::Decoder::with_buffer(src).map_err(|e| bad(&e.to_string()))?;
    decoder.take(room.saturating_add(1)).read_to_end(&mut out).map_err(|e| bad(&e.to_string()))?;
    if (out.len() - start) as u64 > room {
        return Err(bad(&format!("it decompresses to more than its column chunk's {limit} bytes")));
    }
    Ok((out, false))
}

/// Decompresses one frame after what `out` holds, in one call with the thread's context
/// (`out` has room for the size it states).
fn whole(src: &[u8], out: &mut Vec<u8>) -> PqResult<()> {
    // After what `out` holds already (a Vec alone would be written from its start).
    let mut after = std::io::Cursor::new(out);
    after.set_position(after.get_ref().len() as u64);
    CONTEXT
        .with_borrow_mut(|ctx| {
            let ctx = match ctx {
                Some(c) => c,
                None => ctx.insert(zstd::bulk::Decompressor::new()?),
            };
            ctx.decompress_to_buffer(src, &mut after)
        })
        .map(|_| ())
        .map_err(|e| bad(&e.to_string()))
}

/// Streams one frame into `out` (which has room for the size it states; its page starts at
/// `start`) through the thread's streaming context, stopping once `prefix` is out. Returns
/// whether it stopped before the frame's end.
fn stream_prefix(src: &[u8], out: &mut Vec<u8>, start: usize, prefix: Prefix) -> PqResult<bool> {
    STREAM.with_borrow_mut(|ctx| {
        let ctx = match ctx {
            Some(c) => c,
            None => ctx.insert(stream_context()?),
        };
        let failed = |code: usize| bad(zstd::zstd_safe::get_error_name(code));
        ctx.reset(ResetDirective::SessionOnly).map_err(failed)?;
        let mut fed = 0;
        let cut = loop {
            let mut input = InBuffer::around(&src[..(fed + STEP).min(src.len())]);
            input.set_pos(fed);
            let at = out.len();
            let hint = ctx.decompress_stream(&mut OutBuffer::around_pos(out, at), &mut input).map_err(failed)?;
            fed = input.pos();
            if hint == 0 {
                break false;
            }
            if prefix.bytes(&out[start..]).is_some_and(|n| out.len() - start >= n) {
                break true;
            }
            if fed == src.len() {
                return Err(bad("its frame ends early"));
            }
        };
        // A stream stopped halfway must not carry over into the next page.
        ctx.reset(ResetDirective::SessionOnly).map_err(failed)?;
        Ok(cut)
    })
}

/// A streaming context writing straight into the caller's buffer.
fn stream_context() -> PqResult<DCtx<'static>> {
    let mut c = DCtx::try_create().ok_or_else(|| bad("no decompression context could be created"))?;
    c.set_parameter(DParameter::StableOutBuffer(true)).map_err(|e| bad(zstd::zstd_safe::get_error_name(e)))?;
    Ok(c)
}

/// A page that cannot be decompressed.
fn bad(why: &str) -> ParquetError {
    ParquetError::General(format!("a zstd page cannot be decompressed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::basic::Encoding;

    /// A page decompressed whole.
    fn whole_page(p: Page, limit: u64) -> PqResult<Page> {
        page(p, limit, None).map(|(p, _)| p)
    }

    fn dict(buf: Vec<u8>) -> Page {
        Page::DictionaryPage { buf: buf.into(), num_values: 1, encoding: Encoding::PLAIN, is_sorted: false }
    }

    #[test]
    fn pages_decompress_with_the_threads_context_and_within_their_chunk() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        let framed = zstd::bulk::compress(&data, 3).unwrap();
        let out = whole_page(dict(framed.clone()), 1 << 20).unwrap();
        assert_eq!(out.buffer().as_ref(), &data[..]);
        // A second page on the same thread reuses the context.
        assert_eq!(whole_page(dict(framed.clone()), 1 << 20).unwrap().buffer().as_ref(), &data[..]);
        let err = whole_page(dict(framed), 1000).unwrap_err().to_string();
        assert!(err.contains("more than its column chunk's 1000"), "{err}");
    }

    #[test]
    fn frames_without_a_size_or_several_frames_stream_and_are_bounded() {
        let data = vec![7u8; 50_000];
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &data).unwrap();
        let unsized_frame = enc.finish().unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&unsized_frame).unwrap(), None);
        assert_eq!(whole_page(dict(unsized_frame.clone()), 1 << 20).unwrap().buffer().len(), 50_000);
        let err = whole_page(dict(unsized_frame), 49_999).unwrap_err().to_string();
        assert!(err.contains("more than its column chunk's 49999"), "{err}");
        let mut two = zstd::bulk::compress(&data, 3).unwrap();
        two.extend(zstd::bulk::compress(&data[..10], 3).unwrap());
        assert_eq!(whole_page(dict(two), 1 << 20).unwrap().buffer().len(), 50_010);
    }

    #[test]
    fn only_zstd_chunks_are_opened_as_stored_and_a_page_is_at_most_2_gib() {
        use parquet::basic::{Type as Phys, ZstdLevel};
        use parquet::schema::types::{ColumnDescriptor, ColumnPath, Type};
        use std::sync::Arc;
        let leaf = Arc::new(Type::primitive_type_builder("x", Phys::DOUBLE).build().unwrap());
        let descr = Arc::new(ColumnDescriptor::new(leaf, 0, 0, ColumnPath::from("x")));
        let chunk = |codec, size| {
            ColumnChunkMetaData::builder(descr.clone())
                .set_compression(codec)
                .set_total_uncompressed_size(size)
                .build()
                .unwrap()
        };
        assert!(stored(&chunk(Compression::SNAPPY, 1000)).unwrap().is_none());
        let zstd = Compression::ZSTD(ZstdLevel::default());
        let (raw, limit) = stored(&chunk(zstd, 1000)).unwrap().unwrap();
        assert_eq!((raw.compression(), limit), (Compression::UNCOMPRESSED, 1000));
        // A footer claiming a terabyte still bounds a page by what a page header can state.
        let (_, limit) = stored(&chunk(zstd, 1 << 40)).unwrap().unwrap();
        assert_eq!(limit, i32::MAX as u64);
    }

    #[test]
    fn a_v2_page_keeps_its_levels_and_garbage_is_an_error() {
        let values = zstd::bulk::compress(&[1u8, 2, 3, 4], 1).unwrap();
        let mut buf = vec![9u8, 9];
        buf.extend(&values);
        let v2 = Page::DataPageV2 {
            buf: buf.into(),
            num_values: 4,
            encoding: Encoding::PLAIN,
            num_nulls: 0,
            num_rows: 4,
            def_levels_byte_len: 2,
            rep_levels_byte_len: 0,
            is_compressed: true,
            statistics: None,
        };
        let out = whole_page(v2, 100).unwrap();
        assert_eq!(out.buffer().as_ref(), &[9, 9, 1, 2, 3, 4]);
        assert!(matches!(out, Page::DataPageV2 { is_compressed: false, .. }));
        let err = whole_page(dict(vec![1, 2, 3, 4, 5]), 100).unwrap_err().to_string();
        assert!(err.contains("cannot be decompressed"), "{err}");
    }

    /// Doubles that barely compress (an LCG's bits), so the frame has many blocks.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .flat_map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000).to_le_bytes()
            })
            .collect()
    }

    /// A v1 data page of `n` PLAIN doubles after 3 bytes of length-prefixed levels.
    fn v1(n: usize, seed: u64) -> (Page, Vec<u8>) {
        let mut raw = vec![3u8, 0, 0, 0, 9, 9, 9];
        raw.extend(noise(n, seed));
        let page = Page::DataPage {
            buf: zstd::bulk::compress(&raw, 3).unwrap().into(),
            num_values: n as u32,
            encoding: Encoding::PLAIN,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        (page, raw)
    }

    #[test]
    fn a_page_is_decompressed_only_as_far_as_the_rows_read() {
        let prefix = |rows| Prefix { rows, width: 8, levels: true };
        // Twice in a row on one thread: the stream stopped halfway starts over cleanly.
        for (seed, rows) in [(1, 20_000), (2, 50_000)] {
            let (p, raw) = v1(200_000, seed);
            let (out, cut) = page(p, 1 << 22, Some(prefix(rows))).unwrap();
            let buf = out.buffer();
            assert!(cut);
            // Whole blocks (128 KiB at most) past the rows' values, never the whole page.
            assert!(buf.len() >= 7 + rows * 8 && buf.len() < 7 + rows * 8 + (256 << 10), "{}", buf.len());
            assert_eq!(buf.as_ref(), &raw[..buf.len()]);
        }
        // Past seven eighths of the rows, the page is decompressed whole, as it states.
        let (p, raw) = v1(200_000, 3);
        let (out, cut) = page(p, 1 << 22, Some(prefix(175_001))).unwrap();
        assert!(!cut);
        assert_eq!(out.buffer().as_ref(), &raw[..]);
        // The chunk's bound holds for a page cut short too.
        let (p, _) = v1(200_000, 4);
        let err = page(p, 1 << 20, Some(prefix(10))).unwrap_err().to_string();
        assert!(err.contains("more than its column chunk's"), "{err}");
    }

    #[test]
    fn only_plain_fixed_width_data_pages_are_cut_and_v2_keeps_its_levels() {
        let values = noise(100_000, 5);
        let mut buf = vec![7u8, 7];
        buf.extend(zstd::bulk::compress(&values, 3).unwrap());
        let v2 = |encoding| Page::DataPageV2 {
            buf: buf.clone().into(),
            num_values: 100_000,
            encoding,
            num_nulls: 0,
            num_rows: 100_000,
            def_levels_byte_len: 2,
            rep_levels_byte_len: 0,
            is_compressed: true,
            statistics: None,
        };
        let prefix = Some(Prefix { rows: 1_000, width: 8, levels: false });
        let (out, cut) = page(v2(Encoding::PLAIN), 1 << 21, prefix).unwrap();
        assert!(cut && matches!(out, Page::DataPageV2 { is_compressed: false, .. }));
        let got = out.buffer();
        assert_eq!(&got[..2], &[7, 7]);
        assert!(got.len() >= 2 + 8_000 && got.len() < 800_002);
        assert_eq!(&got[2..], &values[..got.len() - 2]);
        // Dictionary indices, byte arrays (width 0) and dictionary pages: decompressed whole.
        let (out, cut) = page(v2(Encoding::RLE_DICTIONARY), 1 << 21, prefix).unwrap();
        assert!(!cut && out.buffer().len() == 800_002);
        let (_, cut) = page(v2(Encoding::PLAIN), 1 << 21, prefix.map(|p| Prefix { width: 0, ..p })).unwrap();
        assert!(!cut);
        let framed = zstd::bulk::compress(&values, 3).unwrap();
        let dict_page = Page::DictionaryPage {
            buf: framed.into(),
            num_values: 100_000,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let (out, cut) = page(dict_page, 1 << 21, prefix).unwrap();
        assert!(!cut && out.buffer().as_ref() == &values[..]);
    }
}
