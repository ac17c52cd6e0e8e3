#!/usr/bin/env python3
"""Rewrites a Parquet file the way another tool would, for the engine's reference suite.

    rewrite.py SRC OUT WRITER SEED

WRITER is duckdb, pyarrow or polars. SEED picks that writer's options the way users leave
or set them: compression (zstd, snappy, none), row group size, dictionary on or off, page size,
statistics, the data page format (1.0 or 2.0), and whether the time column `ts` stays UTC-zoned or becomes a naive timestamp.
Prints the options chosen, so a failure names them.
"""

import random
import sys

src, out, writer, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
naive = rng.random() < 0.5
rows_per_group = rng.choice([7, 50, 333, 1_000_000])
opts = {"naive": naive, "rows_per_group": rows_per_group}

if writer == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    comp = rng.choice(["zstd", "snappy", "uncompressed"])
    opts["compression"] = comp
    ts = "ts::TIMESTAMP AS ts" if naive else "ts"
    con.execute(
        f"COPY (SELECT {ts}, * EXCLUDE (ts) FROM '{src}') TO '{out}' "
        f"(FORMAT parquet, COMPRESSION {comp}, ROW_GROUP_SIZE {rows_per_group})"
    )
else:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    if naive:
        i = table.schema.get_field_index("ts")
        table = table.set_column(i, "ts", table.column("ts").cast(pa.timestamp("ms")))
    if writer == "pyarrow":
        comp = rng.choice(["snappy", "zstd", "none"])
        dictionary = rng.random() < 0.7
        page = rng.choice([64, 1024, 1 << 20])
        # Drawn last, so the earlier draws of each seed stay what they were.
        version = rng.choice(["1.0", "2.0"])
        opts.update(compression=comp, dictionary=dictionary, data_page_size=page, data_page_version=version)
        pq.write_table(
            table,
            out,
            row_group_size=rows_per_group,
            compression=comp,
            use_dictionary=dictionary,
            data_page_size=page,
            data_page_version=version,
        )
    elif writer == "polars":
        import polars as pl

        comp = rng.choice(["zstd", "snappy", "uncompressed", "lz4"])
        stats = rng.random() < 0.8
        opts.update(compression=comp, statistics=stats)
        pl.from_arrow(table).write_parquet(out, compression=comp, row_group_size=rows_per_group, statistics=stats)
    else:
        sys.exit(f"unknown writer {writer}")
print(writer, opts)
