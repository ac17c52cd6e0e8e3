#!/usr/bin/env python3
"""Markdown tables from benches/foreign.sh outputs (the README's summary).

    foreign_summary.py OUT.txt...

Each OUT.txt is what one `benches/foreign.sh` run printed. Prints, per scale factor, one row
per file: quiver's ratio to DuckDB and to the fastest other engine, for the engine alone and
with the chunk cache (work avoided), then peak RSS next to DuckDB's, then (from runs with the
floor columns) each query's decompression floor on 2 cores against the fastest engine.
"""

import re
import sys

runs = []
for path in sys.argv[1:]:
    text = open(path).read()
    m = re.search(r"lineitem SF (\d+) written by (\w+), (\w+) timestamps", text)
    if not m:
        continue
    sf, writer, ts = m.groups()
    lines = text[m.start():].splitlines()
    head = lines[1].split()
    rows = {}
    for line in lines[2:]:
        cells = line.split()
        if not cells or not re.fullmatch(r"Q\d", cells[0]):
            continue
        rows[cells[0]] = cells
    runs.append((int(sf), writer, ts, head, rows))

ORDER = {"duckdb": 0, "pyarrow": 1, "polars": 2}
engines = ["duckdb", "datafusion", "polars", "chdb"]
for sf in sorted({r[0] for r in runs}):
    print(f"\nSF {sf}: quiver ÷ DuckDB and ÷ the fastest of DuckDB, DataFusion, Polars and chDB "
          "(engine alone / with the chunk cache, work avoided)\n")
    print("| file written by | timestamps | " + " | ".join(f"Q{i}" for i in range(1, 7)) + " |")
    print("| --- | --- |" + " --- |" * 6)
    for _, writer, ts, head, rows in sorted((r for r in runs if r[0] == sf), key=lambda r: (ORDER[r[1]], r[2])):
        cells = []
        for q in [f"Q{i}" for i in range(1, 7)]:
            c = rows.get(q)
            if not c:
                cells.append("–")
                continue
            ms = dict(zip(["quiver", "quiver+chunks"] + engines, map(float, c[1:7])))
            fastest = min(engines, key=lambda e: ms[e])
            a, b = ms["quiver"], ms["quiver+chunks"]
            cells.append(f"{a / ms['duckdb']:.2f} / {b / ms['duckdb']:.2f}; {a / ms[fastest]:.2f} / {b / ms[fastest]:.2f} ({fastest})")
        print(f"| {writer} | {ts} | " + " | ".join(cells) + " |")
    print(f"\nSF {sf}: milliseconds (quiver / quiver with chunk cache / DuckDB / DataFusion / Polars / chDB) and peak RSS in MB (quiver / with chunk cache / DuckDB)\n")
    print("| file | " + " | ".join(f"Q{i}" for i in range(1, 7)) + " | RSS |")
    print("| --- |" + " --- |" * 7)
    for _, writer, ts, head, rows in sorted((r for r in runs if r[0] == sf), key=lambda r: (ORDER[r[1]], r[2])):
        cells, rss = [], (0, 0, 0)
        for q in [f"Q{i}" for i in range(1, 7)]:
            c = rows.get(q)
            if not c:
                cells.append("–")
                continue
            cells.append(" / ".join(f"{float(x):.0f}" if float(x) >= 10 else f"{float(x):.1f}" for x in c[1:7]))
            # After the 6 times and the 6 ratio cells: MB of quiver, quiver+chunks, duckdb.
            mb = [int(x) for x in c[13:16]]
            rss = tuple(max(p, q2) for p, q2 in zip(rss, mb))
        print(f"| {writer}, {ts} | " + " | ".join(cells) + f" | {rss[0]} / {rss[1]} / {rss[2]} |")

    floors = [r for r in runs if r[0] == sf and "floor/fastest" in r[3]]
    if floors:
        print(f"\nSF {sf}: the decompression floor on 2 cores (benches/floor.py) ÷ the fastest engine; "
              "above 0.50, no engine that decompresses those pages can take half the fastest's time\n")
        print("| file | " + " | ".join(f"Q{i}" for i in range(1, 7)) + " |")
        print("| --- |" + " --- |" * 6)
        for _, writer, ts, head, rows in sorted(floors, key=lambda r: (ORDER[r[1]], r[2])):
            # The floor's two cells come after the rows column (c[17]), before "equal".
            cells = [f"{float(rows[q][18]):.1f} ms, {float(rows[q][19]):.2f}" if q in rows else "–" for q in [f"Q{i}" for i in range(1, 7)]]
            print(f"| {writer}, {ts} | " + " | ".join(cells) + " |")
