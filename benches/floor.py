#!/usr/bin/env python3
"""The decompression floor of Q1-Q6 on one Parquet file.

Every engine must decompress the pages that hold the rows a query reads. This tool finds those
pages (row groups by their ship-date statistics, pages by the rows the ship dates select) for
the columns each query reads, decompresses them single-threaded with the same libraries the
engines use (pyarrow's zstd and snappy), and prints the time. Shared between two cores (half
the total, or the largest page when that is more: one page cannot be split), that is the
fastest any engine can answer on this file without keeping decompressed data around (a
cache: work avoided). When the floor is above half another engine's time, the issue-17 goal of
"≤ 0.5× the fastest" cannot be met by a faster engine on that file, only by avoiding the work.

Usage: floor.py FILE [RUNS]   (prints one row per query; needs pyarrow)
"""

import datetime as dt
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engines import SPANS

# Per query: the columns read other than the ship date, and whether the time grain is `all`
# (then the ship date is read only in row groups the interval cuts). The intervals are the
# other engines' (benches/engines.py), which are quiver's URLs'.
QUERIES = {
    "Q1": (["return_flag", "line_status", "quantity", "extended_price", "discount", "tax"], True),
    "Q2": (["ship_mode", "quantity"], False),
    "Q3": (["return_flag", "ship_mode", "extended_price"], False),
    "Q4": (["ship_instruct", "ship_mode", "quantity"], False),
    "Q5": (["supp_key", "quantity"], True),
    "Q6": (["quantity", "extended_price"], False),
}
CODECS = {"ZSTD": "zstd", "SNAPPY": "snappy", "LZ4_RAW": "lz4_raw", "GZIP": "gzip", "BROTLI": "brotli"}


def varint(b, p):
    r = s = 0
    while True:
        x = b[p]
        p += 1
        r |= (x & 0x7F) << s
        s += 7
        if not x & 0x80:
            return r, p


def read_struct(b, p):
    """A thrift compact-protocol struct at p: ({field id: value}, end)."""
    out, last = {}, 0
    while True:
        h = b[p]
        p += 1
        if h == 0:
            return out, p
        t, d = h & 0x0F, h >> 4
        if d:
            fid = last + d
        else:
            v, p = varint(b, p)
            fid = (v >> 1) ^ -(v & 1)
        last = fid
        out[fid], p = read_val(b, p, t)


def read_val(b, p, t):
    if t in (1, 2):
        return t == 1, p
    if t in (3, 4, 5, 6):
        v, p = varint(b, p)
        return (v >> 1) ^ -(v & 1), p
    if t == 7:
        return b[p : p + 8], p + 8
    if t == 8:
        n, p = varint(b, p)
        return b[p : p + n], p + n
    if t in (9, 10):
        h = b[p]
        p += 1
        n, et = h >> 4, h & 0x0F
        if n == 15:
            n, p = varint(b, p)
        items = []
        for _ in range(n):
            v, p = read_val(b, p, et)
            items.append(v)
        return items, p
    if t == 12:
        return read_struct(b, p)
    raise ValueError(f"thrift type {t}")


def pages(file, chunk):
    """(is dictionary, first row, rows, compressed bytes, uncompressed size) per page."""
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page and chunk.dictionary_page_offset else chunk.data_page_offset
    file.seek(start)
    data = file.read(chunk.total_compressed_size)
    p, end, row = 0, chunk.total_compressed_size, 0
    while p < end:
        h, q = read_struct(data, p)
        comp, unc = h[3], h[2]
        body = data[q : q + comp]
        if h[1] == 2:
            yield True, 0, 0, body, unc
        elif h[1] in (0, 3):
            v2 = h[1] == 3
            hdr = h[8] if v2 else h[5]
            rows = hdr.get(3, hdr[1]) if v2 else hdr[1]
            if v2:
                levels = hdr.get(5, 0) + hdr.get(6, 0)
                compressed = hdr.get(7, True)
                body, unc = (body[levels:], unc - levels) if compressed else (b"", 0)
            yield False, row, rows, body, unc
            row += rows
        p = q + comp


def selected_rows(f, rg, start, end):
    """Row ranges of row group rg whose ship date is in [start, end)."""
    col = f.read_row_group(rg, columns=["ship_date"]).column(0)
    t = col.type
    naive = pa.timestamp(t.unit) if pa.types.is_timestamp(t) else t
    col = col.cast(naive) if pa.types.is_timestamp(t) else col
    lo, hi = pa.scalar(dt.datetime.fromisoformat(start), naive), pa.scalar(dt.datetime.fromisoformat(end), naive)
    mask = pc.and_(pc.greater_equal(col, lo), pc.less(col, hi)).to_numpy(zero_copy_only=False)
    ranges, i, n = [], 0, len(mask)
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            ranges.append((i, j))
            i = j
        else:
            i += 1
    return ranges


def work(path, query):
    """The (codec, body, uncompressed size) of every page query must decompress."""
    cols, all_grain = QUERIES[query]
    start, end = SPANS[query]
    f = pq.ParquetFile(path)
    md = f.metadata
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    file = open(path, "rb")
    out = []
    for rg in range(md.num_row_groups):
        meta = md.row_group(rg)
        ranges = selected_rows(f, rg, start, end)
        if not ranges:
            continue
        whole = ranges == [(0, meta.num_rows)]
        needed = cols + ([] if all_grain and whole else ["ship_date"])
        for name in needed:
            chunk = meta.column(names.index(name))
            codec = CODECS.get(chunk.compression)
            for is_dict, first, rows, body, unc in pages(file, chunk):
                if is_dict or any(a < first + rows and first < b for a, b in ranges):
                    out.append((codec, body, unc))
    return out


def floor_ms(path, query, runs=3):
    """(pages, compressed MB, decompressed MB, 1 core ms, 2 cores ms) of one query: the best
    of `runs` decompressions of each page it must read, and that shared between two cores (half
    the total, or the largest page when that is more: one page is never split)."""
    todo = work(path, query)
    bufs = [(c, pa.py_buffer(b), u) for c, b, u in todo if c and u > 0]
    times = [float("inf")] * len(bufs)
    for _ in range(runs):
        for i, (codec, buf, unc) in enumerate(bufs):
            t0 = time.perf_counter()
            pa.decompress(buf, decompressed_size=unc, codec=codec)
            times[i] = min(times[i], (time.perf_counter() - t0) * 1000)
    one = sum(times)
    two = max([one / 2] + times)
    comp = sum(len(b) for _, b, _ in todo) / 1e6
    unc = sum(u for _, _, u in todo) / 1e6
    return len(todo), comp, unc, one, two


def main():
    path, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"{path}: decompression floor, single-threaded, best of {runs}")
    print("| query | pages | compressed MB | decompressed MB | 1 core ms | 2 cores ms (a page is never split) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for q in QUERIES:
        n, comp, unc, one, two = floor_ms(path, q, runs)
        print(f"| {q} | {n} | {comp:.1f} | {unc:.1f} | {one:.1f} | {two:.1f} |")


if __name__ == "__main__":
    main()
