#!/usr/bin/env python3
"""Writes TPC-H lineitem (from tpchgen-cli) flattened for the comparison, with another tool.

    foreign_write.py RAW.parquet OUT.parquet --writer duckdb|pyarrow|polars --timestamps naive|utc

Columns: ship_date (naive TIMESTAMP, or TIMESTAMP WITH TIME ZONE 'UTC'), return_flag,
line_status, ship_mode, ship_instruct, supp_key, part_key, and quantity, extended_price,
discount, tax as DOUBLE; rows ordered by ship date. DuckDB writes zstd in 1,000,000-row groups
(no page index: the issue's recipe); pyarrow and Polars write with their defaults.
"""

import argparse

import duckdb

ap = argparse.ArgumentParser()
ap.add_argument("raw")
ap.add_argument("out")
ap.add_argument("--writer", choices=["duckdb", "pyarrow", "polars"], required=True)
ap.add_argument("--timestamps", choices=["naive", "utc"], required=True)
a = ap.parse_args()

con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
ts = "l_shipdate::TIMESTAMP" if a.timestamps == "naive" else "l_shipdate::TIMESTAMP::TIMESTAMPTZ"
select = f"""
    SELECT {ts} AS ship_date, l_returnflag AS return_flag, l_linestatus AS line_status,
           l_shipmode AS ship_mode, l_shipinstruct AS ship_instruct, l_suppkey AS supp_key,
           l_partkey AS part_key, l_quantity::DOUBLE AS quantity,
           l_extendedprice::DOUBLE AS extended_price, l_discount::DOUBLE AS discount,
           l_tax::DOUBLE AS tax
    FROM '{a.raw}' ORDER BY l_shipdate"""
if a.writer == "duckdb":
    con.execute(f"COPY ({select}) TO '{a.out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
else:
    rel = con.sql(select)
    table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    if hasattr(table, "read_all"):
        table = table.read_all()
    if a.writer == "pyarrow":
        import pyarrow.parquet as pq

        pq.write_table(table, a.out)
    else:
        import polars as pl

        pl.from_arrow(table).write_parquet(a.out)
print(f"{a.out}: written by {a.writer} ({a.timestamps} timestamps)")
