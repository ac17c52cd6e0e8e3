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

use parquet::basic::Compression;
use parquet::column::page::Page;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::ColumnChunkMetaData;
use std::cell::RefCell;
use std::io::Read;

thread_local! {
    /// This thread's zstd decompression context, created on its first page.
    static CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
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
pub fn page(mut page: Page, limit: u64) -> PqResult<Page> {
    match &mut page {
        Page::DataPage { buf, .. } | Page::DictionaryPage { buf, .. } => *buf = inflate(buf, Vec::new(), limit)?.into(),
        Page::DataPageV2 { buf, def_levels_byte_len, rep_levels_byte_len, is_compressed, .. } if *is_compressed => {
            let levels = (*def_levels_byte_len as usize).saturating_add(*rep_levels_byte_len as usize);
            let (head, values) =
                buf.split_at_checked(levels).ok_or_else(|| bad("its levels are longer than the page"))?;
            *buf = inflate(values, head.to_vec(), limit)?.into();
            *is_compressed = false;
        }
        Page::DataPageV2 { .. } => {}
    }
    Ok(page)
}

/// Appends the decompressed `src` to `out`, failing when the whole would pass `limit` bytes.
/// One frame that states its size decompresses in one call with the thread's context; other
/// pages (several frames, or no size) stream through a decoder, cut off at the limit.
fn inflate(src: &[u8], mut out: Vec<u8>, limit: u64) -> PqResult<Vec<u8>> {
    // A page with no values may store nothing at all (and a v2 page only its levels).
    if src.is_empty() {
        return Ok(out);
    }
    let room = limit.saturating_sub(out.len() as u64);
    let one_frame = zstd::zstd_safe::find_frame_compressed_size(src).is_ok_and(|n| n == src.len());
    let stated = zstd::zstd_safe::get_frame_content_size(src).ok().flatten();
    if let (true, Some(size)) = (one_frame, stated) {
        if size > room {
            return Err(bad(&format!("it states {size} bytes, more than its column chunk's {limit}")));
        }
        out.reserve_exact(size as usize);
        // After what `out` holds already (a Vec alone would be written from its start).
        let mut after = std::io::Cursor::new(&mut out);
        after.set_position(after.get_ref().len() as u64);
        let n = CONTEXT.with_borrow_mut(|ctx| {
            let ctx = match ctx {
                Some(c) => c,
                None => ctx.insert(zstd::bulk::Decompressor::new()?),
            };
            ctx.decompress_to_buffer(src, &mut after)
        });
        return match n {
            Ok(n) if n as u64 == size => Ok(out),
            Ok(n) => Err(bad(&format!("it decompressed to {n} bytes, not the {size} it states"))),
            Err(e) => Err(bad(&e.to_string())),
        };
    }
    let start = out.len();
    let decoder = zstd::stream::read::Decoder::with_buffer(src).map_err(|e| bad(&e.to_string()))?;
    decoder.take(room.saturating_add(1)).read_to_end(&mut out).map_err(|e| bad(&e.to_string()))?;
    if (out.len() - start) as u64 > room {
        return Err(bad(&format!("it decompresses to more than its column chunk's {limit} bytes")));
    }
    Ok(out)
}

/// A page that cannot be decompressed.
fn bad(why: &str) -> ParquetError {
    ParquetError::General(format!("a zstd page cannot be decompressed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::basic::Encoding;

    fn dict(buf: Vec<u8>) -> Page {
        Page::DictionaryPage { buf: buf.into(), num_values: 1, encoding: Encoding::PLAIN, is_sorted: false }
    }

    #[test]
    fn pages_decompress_with_the_threads_context_and_within_their_chunk() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        let framed = zstd::bulk::compress(&data, 3).unwrap();
        let out = page(dict(framed.clone()), 1 << 20).unwrap();
        assert_eq!(out.buffer().as_ref(), &data[..]);
        // A second page on the same thread reuses the context.
        assert_eq!(page(dict(framed.clone()), 1 << 20).unwrap().buffer().as_ref(), &data[..]);
        let err = page(dict(framed), 1000).unwrap_err().to_string();
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
        assert_eq!(page(dict(unsized_frame.clone()), 1 << 20).unwrap().buffer().len(), 50_000);
        let err = page(dict(unsized_frame), 49_999).unwrap_err().to_string();
        assert!(err.contains("more than its column chunk's 49999"), "{err}");
        let mut two = zstd::bulk::compress(&data, 3).unwrap();
        two.extend(zstd::bulk::compress(&data[..10], 3).unwrap());
        assert_eq!(page(dict(two), 1 << 20).unwrap().buffer().len(), 50_010);
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
        let out = page(v2, 100).unwrap();
        assert_eq!(out.buffer().as_ref(), &[9, 9, 1, 2, 3, 4]);
        assert!(matches!(out, Page::DataPageV2 { is_compressed: false, .. }));
        let err = page(dict(vec![1, 2, 3, 4, 5]), 100).unwrap_err().to_string();
        assert!(err.contains("cannot be decompressed"), "{err}");
    }
}
