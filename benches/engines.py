#!/usr/bin/env python3
"""The other engines of the comparison, each as a worker process of its own.

    engines.py ENGINE PARQUET THREADS naive|utc      (ENGINE: duckdb, datafusion, polars, chdb)

reads query names (Q1..Q6 of benches/compare.py) from stdin, one per line, and prints one JSON
line per query: {"ms": time to run it and receive the whole answer, "rows": [[...]], "hwm":
the worker's peak RSS in kB}. Each engine reads the same file with the same thread count and
writes the query the way an analyst would in its own idiom (SQL for DuckDB, DataFusion and
chDB; the lazy frame API for Polars). Rows are normalised after the clock stops: time buckets
as epoch milliseconds, dimensions as text, numbers as numbers, in the answer's order.
"""

import datetime as dt
import json
import os
import sys
import time

# Set from the command line when run as a worker; benches/floor.py imports SPANS only.
ENGINE, PATH, THREADS, TS = None, None, 0, None

# The intervals of Q1..Q6 (start inclusive, end exclusive), as in the quiver URLs.
SPANS = {
    "Q1": ("1992-01-01", "1998-09-03"),
    "Q2": ("1995-01-01", "1996-01-01"),
    "Q3": ("1993-01-01", "1998-01-01"),
    "Q4": ("1994-01-03", "1997-01-06"),
    "Q5": ("1992-01-01", "1999-01-01"),
    "Q6": ("1995-06-05", "1995-06-12"),
}

# SQL with three holes: {src} the file, {ts} a literal for a timestamp string, {bucket(g)}
# spelled per engine below. The shapes follow benches/compare.py's DuckDB queries.
SQL = {
    "Q1": """SELECT return_flag, line_status, sum(quantity), sum(extended_price),
                  sum(extended_price * (1 - discount)), sum(extended_price * (1 - discount) * (1 + tax)),
                  avg(quantity), avg(extended_price), avg(discount), count(*)
           FROM {src} WHERE {between}
           GROUP BY return_flag, line_status ORDER BY 1, 2""",
    "Q2": """SELECT {day} AS t, ship_mode, sum(quantity), count(*)
           FROM {src} WHERE {between} GROUP BY 1, 2 ORDER BY 1, 2""",
    "Q3": """SELECT {month} AS t, return_flag, sum(extended_price)
           FROM {src} WHERE {between} AND ship_mode IN ('AIR', 'MAIL') GROUP BY 1, 2 ORDER BY 1, 2""",
    "Q4": """WITH g AS (
             SELECT {week} AS w, ship_instruct, ship_mode, sum(quantity) AS q
             FROM {src} WHERE {between} GROUP BY 1, 2, 3)
           SELECT w, ship_instruct, ship_mode, q FROM (
             SELECT *, row_number() OVER (PARTITION BY w ORDER BY q DESC, ship_instruct, ship_mode) AS rn FROM g) r
           WHERE rn <= 3 ORDER BY w, q DESC, ship_instruct, ship_mode""",
    "Q5": """SELECT CAST(supp_key AS VARCHAR) AS k, sum(quantity) AS q
           FROM {src} WHERE {between}
           GROUP BY supp_key ORDER BY q DESC, k LIMIT 10""",
    "Q6": """SELECT {day} AS t, sum(quantity), sum(extended_price)
           FROM {src} WHERE {between} GROUP BY 1 ORDER BY 1""",
}


def sql_for(name, src, literal, bucket):
    lo, hi = SPANS[name]
    between = f"ship_date >= {literal(lo)} AND ship_date < {literal(hi)}"
    return SQL[name].format(src=src, between=between, day=bucket("day"), month=bucket("month"), week=bucket("week"))


def duckdb_engine():
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={THREADS}")
    con.execute("SET TimeZone='UTC'")
    # Past 2 s DuckDB draws a progress bar on stdout, which carries the answers.
    con.execute("SET enable_progress_bar=false")
    kind = "TIMESTAMP" if TS == "naive" else "TIMESTAMPTZ"
    suffix = "" if TS == "naive" else "+00"

    def run(name):
        literal = lambda d: f"{kind} '{d} 00:00:00{suffix}'"  # noqa: E731
        if name.startswith("count:"):
            # The rows a query's interval holds, for rows/s/core (not timed by the driver).
            lo, hi = SPANS[name[6:]]
            return con.execute(f"SELECT count(*) FROM '{PATH}' WHERE ship_date >= {literal(lo)} AND ship_date < {literal(hi)}").fetchall()
        sql = sql_for(name, f"'{PATH}'", literal, lambda g: f"epoch_ms(date_trunc('{g}', ship_date))")
        return con.execute(sql).fetchall()

    return run


def datafusion_engine():
    from datafusion import SessionConfig, SessionContext

    ctx = SessionContext(SessionConfig().with_target_partitions(THREADS))
    ctx.register_parquet("lineitem", PATH)
    suffix = "" if TS == "naive" else "Z"

    def run(name):
        sql = sql_for(
            name,
            "lineitem",
            lambda d: f"CAST('{d}T00:00:00{suffix}' AS TIMESTAMP)" if TS == "naive" else f"to_timestamp('{d}T00:00:00Z')",
            lambda g: f"to_unixtime(date_trunc('{g}', ship_date)) * 1000",
        )
        return [r for b in ctx.sql(sql).collect() for r in zip(*[c.to_pylist() for c in b.columns])]

    return run


def polars_engine():
    os.environ["POLARS_MAX_THREADS"] = str(THREADS)
    import polars as pl

    tz = None if TS == "naive" else dt.timezone.utc

    def between(name):
        lo, hi = (dt.datetime.fromisoformat(d).replace(tzinfo=tz) for d in SPANS[name])
        return (pl.col("ship_date") >= lo) & (pl.col("ship_date") < hi)

    def bucket(every):
        return pl.col("ship_date").dt.truncate(every).dt.epoch("ms").alias("t")

    q, e, d, x = pl.col("quantity"), pl.col("extended_price"), pl.col("discount"), pl.col("tax")
    plans = {
        "Q1": lambda f: f.group_by("return_flag", "line_status")
        .agg(q.sum(), e.sum(), (e * (1 - d)).sum().alias("dp"), (e * (1 - d) * (1 + x)).sum().alias("ch"), q.mean().alias("aq"), e.mean().alias("ap"), d.mean().alias("ad"), pl.len())
        .sort("return_flag", "line_status"),
        "Q2": lambda f: f.group_by(bucket("1d"), "ship_mode").agg(q.sum(), pl.len()).sort("t", "ship_mode"),
        "Q3": lambda f: f.filter(pl.col("ship_mode").is_in(["AIR", "MAIL"])).group_by(bucket("1mo"), "return_flag").agg(e.sum()).sort("t", "return_flag"),
        "Q4": lambda f: f.group_by(bucket("1w"), "ship_instruct", "ship_mode")
        .agg(q.sum())
        .sort(["t", "quantity", "ship_instruct", "ship_mode"], descending=[False, True, False, False])
        .filter(pl.int_range(pl.len()).over("t") < 3),
        "Q5": lambda f: f.group_by("supp_key")
        .agg(q.sum())
        .with_columns(pl.col("supp_key").cast(pl.String))
        .sort(["quantity", "supp_key"], descending=[True, False])
        .head(10),
        "Q6": lambda f: f.group_by(bucket("1d")).agg(q.sum(), e.sum()).sort("t"),
    }

    def run(name):
        return plans[name](pl.scan_parquet(PATH).filter(between(name))).collect().rows()

    return run


def chdb_engine():
    from chdb import session

    s = session.Session()
    settings = f" SETTINGS max_threads={THREADS}, session_timezone='UTC'"

    def run(name):
        buckets = {"day": "toDate(ship_date)", "month": "toStartOfMonth(ship_date)", "week": "toMonday(ship_date)"}
        sql = sql_for(
            name,
            f"file('{PATH}', Parquet)",
            lambda d: f"toDateTime64('{d} 00:00:00', 6, 'UTC')",
            lambda g: f"toUnixTimestamp(toDateTime({buckets[g]}, 'UTC')) * 1000",
        ).replace("CAST(supp_key AS VARCHAR)", "toString(supp_key)")
        return s.query(sql + settings, "ArrowTable")

    return run


def normalise(rows):
    """Plain JSON values: integral floats stay floats, Decimals become floats."""
    out = []
    for r in rows:
        out.append([(float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, bool)) else v) for v in r])
    return out


def main():
    run = {"duckdb": duckdb_engine, "datafusion": datafusion_engine, "polars": polars_engine, "chdb": chdb_engine}[ENGINE]()
    for line in sys.stdin:
        name = line.strip()
        t0 = time.perf_counter()
        try:
            result = run(name)
        except Exception as e:  # noqa: BLE001 - reported to the driver, which fails the run
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
            continue
        ms = (time.perf_counter() - t0) * 1000
        if hasattr(result, "to_pylist"):  # chDB's Arrow table
            result = [tuple(d.values()) for d in result.to_pylist()]
        with open("/proc/self/status") as f:
            hwm = [int(x.split()[1]) for x in f if x.startswith("VmHWM:")][0]
        print(json.dumps({"ms": ms, "rows": normalise(result), "hwm": hwm}, default=str), flush=True)


if __name__ == "__main__":
    ENGINE, PATH, THREADS, TS = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    main()
