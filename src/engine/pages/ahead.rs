//! Reading ahead on spare cores. A scan with fewer units than cores leaves cores idle, while
//! a unit's own thread decompresses its column chunks one after another: a one-week query
//! that meets one row group spends most of its time decompressing one large page of one
//! column while the other core waits. Here the unit's largest chunks are read and
//! decompressed whole on helper threads while the unit's own thread reads the rest as it
//! decodes; a cursor that reaches a chunk still being read waits for it
//! ([`PageSource::Pending`]). Only chunks read from the file are given away (a cached chunk
//! costs nothing to read). A helper skips exactly the pages the unit's cursor would skip:
//! those that hold none of the rows the unit reads.

use super::chunks::{AheadPage, PageSource};
use parquet::errors::{ParquetError, Result as PqResult};
use std::sync::mpsc;
use std::thread::Scope;

/// The most decompressed bytes of one chunk a helper reads ahead; a larger chunk is read page
/// by page by the unit's own thread, so read-ahead holds at most this much per column.
pub const AHEAD_MAX: u64 = 64 << 20;

/// Which thread reads each chunk: 0 = the unit's own thread, `1..=helpers` = a helper.
/// `sizes` holds each chunk's decompressed bytes when it is read from the file (`None`:
/// cached, or not worth giving away). Largest first, each to the least-loaded thread, and a
/// helper before the unit's own thread on a tie, since that thread also decodes.
pub fn assign(sizes: &[Option<u64>], helpers: usize) -> Vec<usize> {
    let mut owner = vec![0; sizes.len()];
    if helpers == 0 {
        return owner;
    }
    let mut order: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i].is_some_and(|b| b <= AHEAD_MAX)).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut load = vec![0u64; helpers + 1];
    for i in order {
        let least = (1..=helpers).chain([0]).min_by_key(|&t| load[t]).unwrap_or(0);
        owner[i] = least;
        load[least] += sizes[i].unwrap_or(0);
    }
    owner
}

/// Starts one helper per thread `owner` names, reading the pages that hold rows of `ranges`
/// (first row, rows) and stopping between pages when `canceled`, and swaps each chunk it was
/// given for a source that waits for the helper's pages. Returns how many chunks it gave away.
pub fn start<'s, 'e>(
    scope: &'s Scope<'s, 'e>,
    sources: &mut [PageSource],
    owner: &[usize],
    ranges: &'e [(usize, usize)],
    canceled: &'e (dyn Fn() -> bool + Sync),
) -> usize {
    let helpers = owner.iter().copied().max().unwrap_or(0);
    for h in 1..=helpers {
        let mut mine = Vec::new();
        for (i, _) in owner.iter().enumerate().filter(|(_, o)| **o == h) {
            let (tx, rx) = mpsc::sync_channel(1);
            let source = std::mem::replace(&mut sources[i], PageSource::Pending(rx));
            mine.push((source, tx));
        }
        scope.spawn(move || {
            for (source, tx) in mine {
                // The unit's thread may have stopped early (an error): nobody waits then.
                let _ = tx.send(read_ahead(source, ranges, canceled));
            }
        });
    }
    owner.iter().filter(|&&o| o > 0).count()
}

/// Every page of a chunk that holds a row of `ranges`, decompressed, and the others skipped
/// (as the cursor skips them: [`super::cursor::Cursor::skip_to`]); then the source is
/// finished, so a chunk read whole enters the chunk cache as if the unit had read it.
fn read_ahead(
    mut source: PageSource,
    ranges: &[(usize, usize)],
    canceled: &dyn Fn() -> bool,
) -> PqResult<Vec<AheadPage>> {
    let mut pages = Vec::new();
    let mut row = 0;
    while let Some(meta) = source.peek_next_page()? {
        if canceled() {
            return Err(ParquetError::General("the query was canceled".into()));
        }
        let rows = meta.num_rows.or(meta.num_levels).filter(|_| !meta.is_dict);
        // An empty page is read: the cursor loads one it meets instead of skipping it.
        let wanted = rows.is_none_or(|n| n == 0 || ranges.iter().any(|&(a, len)| a < row + n && row < a + len));
        if wanted {
            // As far as the last row the unit reads in it (the cursor would stop there too).
            let upto = rows
                .and_then(|n| ranges.iter().map(|&(a, len)| (a + len).min(row + n)).max())
                .map(|e| e.saturating_sub(row));
            let page =
                source.get_next_page_upto(upto)?.ok_or_else(|| ParquetError::General("a page went missing".into()))?;
            pages.push(AheadPage::Read(page));
        } else {
            source.skip_next_page()?;
            pages.push(AheadPage::Skipped(meta));
        }
        row += rows.unwrap_or(0);
    }
    source.finish();
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_chunks_go_to_the_helpers_first() {
        // Q6 on a DuckDB file: ship dates, quantities, prices (one 8 MB page).
        assert_eq!(assign(&[Some(5_000), Some(755_000), Some(8_000_000)], 1), vec![0, 0, 1]);
        // Cached chunks, and chunks too large to hold whole, stay with the unit's own thread.
        assert_eq!(assign(&[None, Some(AHEAD_MAX + 1), Some(10)], 1), vec![0, 0, 1]);
        // Two helpers balance the load, the unit's own thread taking the smallest.
        assert_eq!(assign(&[Some(4), Some(9), Some(8), Some(1)], 2), vec![0, 1, 2, 0]);
        assert_eq!(assign(&[Some(4), Some(9)], 0), vec![0, 0]);
    }
}
