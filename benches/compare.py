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

# Each query: quiver's URL, the answer's columns in the order the other engines give them, and
# whether it has a time column. The other engines' queries are in benches/engines.py.
QUERIES = {
    "Q1": (
        "/v1/data/lineitem/all/returnFlag/lineStatus?metrics=sumQty,sumBasePrice,sumDiscPrice,sumCharge,avgQty,avgPrice,avgDisc,countOrder&dateTime=1992-01-01/1998-09-03",
        ["returnFlag|id", "lineStatus|id", "sumQty", "sumBasePrice", "sumDiscPrice", "sumCharge", "avgQty", "avgPrice", "avgDisc", "countOrder"],
    ),
    "Q2": (
        "/v1/data/lineitem/day/shipMode?metrics=sumQty,countOrder&dateTime=1995-01-01/1996-01-01",
        ["dateTime", "shipMode|id", "sumQty", "countOrder"],
    ),
    "Q3": (
        "/v1/data/lineitem/month/returnFlag?metrics=sumBasePrice&filters=shipMode|id-in[AIR,MAIL]&dateTime=1993-01-01/1998-01-01",
        ["dateTime", "returnFlag|id", "sumBasePrice"],
    ),
    "Q4": (
        "/v1/data/lineitem/week/shipInstruct/shipMode?metrics=sumQty&sort=sumQty|desc&topN=3&dateTime=1994-01-03/1997-01-06",
        ["dateTime", "shipInstruct|id", "shipMode|id", "sumQty"],
    ),
    "Q5": (
        "/v1/data/lineitem/all/suppKey?metrics=sumQty&sort=sumQty|desc&count=10&dateTime=1992-01-01/1999-01-01",
        ["suppKey|id", "sumQty"],
    ),
    "Q6": (
        "/v1/data/lineitem/day?metrics=sumQty,sumBasePrice&dateTime=1995-06-05/1995-06-12",
        ["dateTime", "sumQty", "sumBasePrice"],
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
    def __init__(self, port, pid, label="quiver"):
        self.port, self.pid, self.label = port, pid, label
        self.last = 0.0
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def fresh(self):
        """A new connection when this one has idled long enough for the server to close it
        (its header-read timeout closes idle keep-alive connections; at SF 10 the other
        engines' turns last that long)."""
        if time.monotonic() - self.last > 2:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self.conn.connect()

    def fetch(self, path):
        """The response body: what the timing covers (request to last byte received)."""
        quoted = urllib.parse.quote(path, safe="/?&=,;()")
        self.conn.request("GET", quoted)
        r = self.conn.getresponse()
        body = r.read()
        self.last = time.monotonic()
        if r.status != 200:
            raise RuntimeError(f"quiver {r.status}: {body[:500]!r}")
        return body

    def run(self, path):
        return json.loads(self.fetch(path))["rows"]


def quiver_rows(rows, cols):
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


ENGINES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engines.py")


class Engine:
    """Another engine in its own process (benches/engines.py), so its peak RSS is its own."""

    def __init__(self, python, name, path, threads, timestamps):
        self.name = name
        self.p = subprocess.Popen([python, ENGINES, name, path, str(threads), timestamps], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, query):
        self.p.stdin.write(query + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: the worker exited")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"{self.name}: {out['error']}")
        return out

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def settle():
    """A pause before each timed query: engines keep worker threads spinning for a while after
    a query (Polars' and chDB's pools), which would otherwise steal the next engine's cores."""
    time.sleep(0.1)


def measure(quivers, name, others, runs):
    """Alternates every quiver server and every other engine `runs` times after a warm-up."""
    path, cols = QUERIES[name]
    for q in quivers:
        q.fresh()
        q.run(path)
        reset_peak(q.pid)
    for e in others:
        e.run(name)
    times = {q.label: [] for q in quivers} | {e.name: [] for e in others}
    hwm, answers = {}, {}
    for _ in range(runs):
        # Until the whole answer has arrived; decoding the JSON in Python afterwards is
        # the client's cost (the others' time is running the query into Python values).
        for q in quivers:
            q.fresh()
            settle()
            t0 = time.perf_counter()
            body = q.fetch(path)
            times[q.label].append((time.perf_counter() - t0) * 1000)
            answers[q.label] = quiver_rows(json.loads(body)["rows"], cols)
        for e in others:
            settle()
            out = e.run(name)
            times[e.name].append(out["ms"])
            hwm[e.name] = max(hwm.get(e.name, 0), out["hwm"])
            answers[e.name] = out["rows"]
    for q in quivers:
        hwm[q.label] = rss_kb(q.pid, "VmHWM")
    return {k: statistics.median(v) for k, v in times.items()}, hwm, answers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--also", action="append", default=[], help="PORT:PID:LABEL, another quiver server measured alongside (another configuration)")
    ap.add_argument("--label", default="quiver", help="the label of the --port server")
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--duck-python", required=True, help="a Python with the engines' packages")
    ap.add_argument("--engines", default="duckdb", help="comma-separated: duckdb (always, the reference), datafusion, polars, chdb")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default="")
    ap.add_argument("--title", default="quiver vs DuckDB")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--baseline", default="", help="JSON of an earlier run: print the speedup over it")
    ap.add_argument("--timestamps", choices=["naive", "utc"], default="utc", help="the file's ship_date: naive TIMESTAMP or UTC-zoned")
    ap.add_argument("--floor", action="store_true", help="also print each query's decompression floor on 2 cores (benches/floor.py)")
    args = ap.parse_args()
    engines = ["duckdb"] + [e for e in args.engines.split(",") if e and e != "duckdb"]
    quivers = [Quiver(args.port, args.pid, args.label)]
    for spec in args.also:
        port, pid, label = spec.split(":", 2)
        quivers.append(Quiver(int(port), int(pid), label))

    results, failed = [], False
    names = [n for n in QUERIES if not args.only or n in args.only.split(",")]
    for name in names:
        others = [Engine(args.duck_python, e, args.parquet, args.threads, args.timestamps) for e in engines]
        rows_in = others[0].run("count:" + name)["rows"][0][0]
        med, hwm, answers = measure(quivers, name, others, args.runs)
        for e in others:
            e.close()
        wrong = []
        for e, rows in answers.items():
            if e != "duckdb":
                ok, why = same(rows, answers["duckdb"])
                if not ok:
                    wrong.append(f"{e}: {why}")
        failed |= bool(wrong)
        floor = None
        if args.floor:
            # Measured after the engines' turns, with their processes closed: nothing else runs.
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import floor as floor_tool

            floor = floor_tool.floor_ms(args.parquet, name)[4]
        results.append((name, med, hwm, rows_in, len(answers[quivers[0].label]), wrong, floor))
    report(args, [q.label for q in quivers], engines, results)
    if args.json_out:
        json.dump({r[0]: r[1][quivers[0].label] for r in results}, open(args.json_out, "w"))
    sys.exit(1 if failed else 0)


def report(args, labels, engines, results):
    """One table: every engine's median, each quiver's ratio to DuckDB and to the fastest other."""
    base = json.load(open(args.baseline)) if args.baseline else {}
    print(f"\n{args.title} ({args.runs} runs each after a warm-up, medians in ms, {args.threads} threads)")
    short = {lab: f"q{i}" if len(labels) > 1 else "" for i, lab in enumerate(labels)}
    head = f"{'query':6}" + "".join(f" {x:>10}" for x in labels + engines)
    for lab in labels:
        head += f" {short[lab] + '/duck':>8}" + (f" {short[lab] + '/fastest':>11}" if len(engines) > 1 else "")
    head += "".join(f" {x[:8] + ' MB':>11}" for x in labels) + f" {'duckdb MB':>10} {'Mrows/s/core':>13} {'rows':>6}"
    head += f" {'raw ms':>9} {'speedup':>8}" if base else ""
    head += f" {'floor ms':>9} {'floor/fastest':>13}" if args.floor else ""
    print(head + "  equal")
    for name, med, hwm, rows_in, n, wrong, floor in results:
        line = f"{name:6}" + "".join(f" {med[x]:10.1f}" for x in labels + engines)
        fastest = min(engines, key=lambda e: med[e])
        for lab in labels:
            line += f" {med[lab] / med['duckdb']:8.2f}"
            line += f" {med[lab] / med[fastest]:7.2f} {fastest[:3]}" if len(engines) > 1 else ""
        line += "".join(f" {hwm[x] / 1024:11.0f}" for x in labels) + f" {hwm['duckdb'] / 1024:10.0f}"
        line += f" {rows_in / (med[labels[0]] / 1000) / args.threads / 1e6:13.1f} {n:6}"
        qm = med[labels[0]]
        line += f" {base[name]:9.1f} {base[name] / qm:7.1f}x" if name in base else ""
        line += f" {floor:9.1f} {floor / min(med[e] for e in engines):13.2f}" if floor is not None else ""
        print(line + "  " + ("yes" if not wrong else "NO: " + "; ".join(wrong)))
    if len(labels) > 1:
        print("  " + "; ".join(f"{short[lab]} = {lab}" for lab in labels))
    if args.floor:
        print("  floor = decompressing, single-threaded with pyarrow's codecs, every page the query must read, shared")
        print("  between 2 cores (a page is never split); above 0.50 floor/fastest, '<= 0.5x the fastest' needs work avoided")


if __name__ == "__main__":
    main()
