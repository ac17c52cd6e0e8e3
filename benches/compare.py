#!/usr/bin/env python3
"""quiver vs DuckDB on the same Parquet file, the same cores, the same questions.

Run through benches/compare.sh, which builds quiver, generates the data and starts the
server. Each query runs through quiver's HTTP API and as SQL in DuckDB, alternately, after a
warm-up; results must be equal (floats to 1e-9 relative). Prints one table per run mode and
exits non-zero if any result differs.

Timing: quiver from sending the request to the last byte of the response on a kept-alive
connection; DuckDB from `execute` to the end of `fetchall` in its own process. Neither
includes turning the answer into Python values for the comparison afterwards.
"""

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

QUERIES = {
    "Q1": (
        "/v1/data/lineitem/all/returnFlag/lineStatus?metrics=sumQty,sumBasePrice,sumDiscPrice,sumCharge,avgQty,avgPrice,avgDisc,countOrder&dateTime=1992-01-01/1998-09-03",
        """SELECT return_flag, line_status, sum(quantity), sum(extended_price),
                  sum(extended_price * (1 - discount)), sum(extended_price * (1 - discount) * (1 + tax)),
                  avg(quantity), avg(extended_price), avg(discount), count(*)
           FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1992-01-01 00:00:00+00' AND ship_date < TIMESTAMPTZ '1998-09-03 00:00:00+00'
           GROUP BY ALL ORDER BY 1, 2""",
        ["returnFlag|id", "lineStatus|id", "sumQty", "sumBasePrice", "sumDiscPrice", "sumCharge", "avgQty", "avgPrice", "avgDisc", "countOrder"],
        False,
    ),
    "Q2": (
        "/v1/data/lineitem/day/shipMode?metrics=sumQty,countOrder&dateTime=1995-01-01/1996-01-01",
        """SELECT epoch_ms(date_trunc('day', ship_date)), ship_mode, sum(quantity), count(*)
           FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1995-01-01 00:00:00+00' AND ship_date < TIMESTAMPTZ '1996-01-01 00:00:00+00'
           GROUP BY ALL ORDER BY 1, 2""",
        ["dateTime", "shipMode|id", "sumQty", "countOrder"],
        True,
    ),
    "Q3": (
        "/v1/data/lineitem/month/returnFlag?metrics=sumBasePrice&filters=shipMode|id-in[AIR,MAIL]&dateTime=1993-01-01/1998-01-01",
        """SELECT epoch_ms(date_trunc('month', ship_date)), return_flag, sum(extended_price)
           FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1993-01-01 00:00:00+00' AND ship_date < TIMESTAMPTZ '1998-01-01 00:00:00+00'
             AND ship_mode IN ('AIR', 'MAIL')
           GROUP BY ALL ORDER BY 1, 2""",
        ["dateTime", "returnFlag|id", "sumBasePrice"],
        True,
    ),
    "Q4": (
        "/v1/data/lineitem/week/shipInstruct/shipMode?metrics=sumQty&sort=sumQty|desc&topN=3&dateTime=1994-01-03/1997-01-06",
        """WITH g AS (
             SELECT epoch_ms(date_trunc('week', ship_date)) AS w, ship_instruct, ship_mode, sum(quantity) AS q
             FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1994-01-03 00:00:00+00' AND ship_date < TIMESTAMPTZ '1997-01-06 00:00:00+00'
             GROUP BY 1, 2, 3)
           SELECT w, ship_instruct, ship_mode, q FROM (
             SELECT *, row_number() OVER (PARTITION BY w ORDER BY q DESC, ship_instruct, ship_mode) AS rn FROM g)
           WHERE rn <= 3 ORDER BY w, q DESC, ship_instruct, ship_mode""",
        ["dateTime", "shipInstruct|id", "shipMode|id", "sumQty"],
        True,
    ),
    "Q5": (
        "/v1/data/lineitem/all/suppKey?metrics=sumQty&sort=sumQty|desc&count=10&dateTime=1992-01-01/1999-01-01",
        """SELECT CAST(supp_key AS VARCHAR), sum(quantity) AS q
           FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1992-01-01 00:00:00+00' AND ship_date < TIMESTAMPTZ '1999-01-01 00:00:00+00'
           GROUP BY supp_key ORDER BY q DESC, CAST(supp_key AS VARCHAR) LIMIT 10""",
        ["suppKey|id", "sumQty"],
        False,
    ),
    "Q6": (
        "/v1/data/lineitem/day?metrics=sumQty,sumBasePrice&dateTime=1995-06-05/1995-06-12",
        """SELECT epoch_ms(date_trunc('day', ship_date)), sum(quantity), sum(extended_price)
           FROM '{path}' WHERE ship_date >= TIMESTAMPTZ '1995-06-05 00:00:00+00' AND ship_date < TIMESTAMPTZ '1995-06-12 00:00:00+00'
           GROUP BY ALL ORDER BY 1""",
        ["dateTime", "sumQty", "sumBasePrice"],
        True,
    ),
}


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class Quiver:
    def __init__(self, port, pid):
        self.port, self.pid = port, pid
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def fetch(self, path):
        """The response body: what the timing covers (request to last byte received)."""
        quoted = urllib.parse.quote(path, safe="/?&=,;()")
        self.conn.request("GET", quoted)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"quiver {r.status}: {body[:500]!r}")
        return body

    def run(self, path):
        return json.loads(self.fetch(path))["rows"]


def quiver_rows(rows, cols, has_time):
    out = []
    for r in rows:
        row = []
        for c in cols:
            v = r[c]
            if c == "dateTime":
                v = int(dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
            row.append(v)
        out.append(row)
    return out


def same(a, b):
    if len(a) != len(b):
        return False, f"{len(a)} rows vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if len(x) != len(y):
            return False, f"row {i}: width"
        for p, q in zip(x, y):
            if isinstance(p, float) or isinstance(q, float):
                p, q = float(p), float(q)
                if abs(p - q) > 1e-9 * max(abs(p), abs(q), 1.0):
                    return False, f"row {i}: {x} vs {y}"
            elif str(p) != str(q):
                return False, f"row {i}: {x} vs {y}"
    return True, ""


DUCK_WORKER = r"""
import duckdb, json, sys, time
path, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute("SET TimeZone='UTC'")
# A query past 2 s would draw DuckDB's progress bar on stdout, which carries the answers.
con.execute("SET enable_progress_bar=false")
for line in sys.stdin:
    sql = json.loads(line)
    t0 = time.perf_counter()
    try:
        rows = con.execute(sql.format(path=path)).fetchall()
    except Exception as e:
        print(json.dumps({"error": str(e)}), flush=True)
        continue
    ms = (time.perf_counter() - t0) * 1000
    rows = [[(float(v) if hasattr(v, 'as_integer_ratio') and not isinstance(v, int) else v) for v in r] for r in rows]
    with open('/proc/self/status') as f:
        hwm = [int(l.split()[1]) for l in f if l.startswith('VmHWM:')][0]
    print(json.dumps({"ms": ms, "rows": rows, "hwm": hwm}, default=str), flush=True)
"""


class Duck:
    """DuckDB in its own process, so its peak RSS is its own."""

    def __init__(self, python, path, threads):
        self.p = subprocess.Popen([python, "-c", DUCK_WORKER, path, str(threads), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, sql):
        self.p.stdin.write(json.dumps(sql) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        if "error" in out:
            raise RuntimeError(f"DuckDB: {out['error']}")
        return out

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--duck-python", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default="")
    ap.add_argument("--title", default="quiver vs DuckDB")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--baseline", default="", help="JSON of an earlier run: print the speedup over it")
    ap.add_argument("--naive", action="store_true", help="ship_date is a naive TIMESTAMP: compare with TIMESTAMP literals")
    args = ap.parse_args()

    q = Quiver(args.port, args.pid)
    results, failed = [], False
    names = [n for n in QUERIES if not args.only or n in args.only.split(",")]
    for name in names:
        path, sql, cols, has_time = QUERIES[name]
        if args.naive:
            # A naive TIMESTAMP column is compared with TIMESTAMP literals (no zone arithmetic).
            sql = sql.replace("TIMESTAMPTZ '", "TIMESTAMP '").replace(" 00:00:00+00'", " 00:00:00'")
        duck = Duck(args.duck_python, args.parquet, args.threads)
        # Warm up both (file cache, footers, dictionaries).
        q.run(path)
        duck.run(sql)
        reset_peak(args.pid)
        qt, dtimes, d_hwm = [], [], 0
        for _ in range(args.runs):
            # Until the whole answer has arrived; decoding the JSON in Python afterwards is
            # the client's cost (DuckDB's time is execute + fetchall into Python rows).
            t0 = time.perf_counter()
            body = q.fetch(path)
            qt.append((time.perf_counter() - t0) * 1000)
            rows = json.loads(body)["rows"]
            out = duck.run(sql)
            dtimes.append(out["ms"])
            d_hwm = max(d_hwm, out["hwm"])
        q_hwm = rss_kb(args.pid, "VmHWM")
        duck.close()
        ok, why = same(quiver_rows(rows, cols, has_time), out["rows"])
        failed |= not ok
        results.append((name, statistics.median(qt), statistics.median(dtimes), q_hwm / 1024, d_hwm / 1024, ok, why, len(rows)))

    base = json.load(open(args.baseline)) if args.baseline else {}
    print(f"\n{args.title} ({args.runs} runs each after a warm-up, medians, {args.threads} threads)")
    extra = f" {'raw ms':>9} {'speedup':>8}" if base else ""
    print(f"{'query':6} {'quiver ms':>10} {'duckdb ms':>10} {'ratio':>7} {'quiver MB':>10} {'duckdb MB':>10} {'rows':>7}{extra}  equal")
    for name, qm, dm, qr, dr, ok, why, n in results:
        more = f" {base[name]:9.1f} {base[name] / qm:7.1f}x" if name in base else ""
        print(f"{name:6} {qm:10.1f} {dm:10.1f} {qm / dm:7.2f} {qr:10.0f} {dr:10.0f} {n:7}{more}  {'yes' if ok else 'NO: ' + why}")
    if args.json_out:
        json.dump({r[0]: r[1] for r in results}, open(args.json_out, "w"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
