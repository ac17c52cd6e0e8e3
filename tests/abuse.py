"""The attacks of tests/abuse.sh, with Python's standard library only. Every loop is bounded."""
import socket
import statistics
import sys
import threading
import time
import urllib.request

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
HEAVY = ("/v1/data/flights/hour/tailnum/flight/dest;show=all?metrics=flights"
         "&dateTime=2013-01-01/2014-01-01")
SLOW = "/v1/data/flights/hour/tailnum/flight?metrics=flights,uniqueTails&dateTime=2013-01-01/2014-01-01&count=1"


def rss_mb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


def request(path, headers=""):
    # Every attack query runs: no answer comes from the result cache.
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nCache-Control: no-cache\r\n{headers}\r\n".encode()


def status_line(s):
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\r\n")[0].decode(errors="replace")


def timed_get(path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Cache-Control": "no-cache", **(headers or {})})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        e.read()
        code = e.code
    return (time.perf_counter() - t) * 1000, code


def p99(samples):
    return sorted(samples)[max(0, int(len(samples) * 0.99) - 1)] if samples else float("nan")


def unread(n):
    base = rss_mb()
    peak = base
    socks = []
    for _ in range(n):
        s = connect()
        s.sendall(request(HEAVY))
        socks.append(s)
    deadline = time.time() + 20
    while time.time() < deadline:
        peak = max(peak, rss_mb())
        time.sleep(0.05)
    codes = {}
    for s in socks:
        try:
            line = status_line(s)
        except OSError:
            line = "closed"
        code = line.split(" ")[1] if line.startswith("HTTP/") else line
        codes[code] = codes.get(code, 0) + 1
    for s in socks:
        s.close()
    print(f"{n} unread heavy responses: peak RSS {peak} MB (idle {base} MB); answers {codes}")


def half_open(n=200):
    socks = []
    for _ in range(n):
        s = connect()
        s.sendall(b"GET /v1/tables HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks.append(s)
    start = time.time()
    open_ = set(range(n))
    lat = []
    while open_ and time.time() - start < 40:
        for i in list(open_):
            try:
                if socks[i].recv(1) == b"":
                    open_.discard(i)
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(i)
        lat.append(timed_get("/status")[0])
        time.sleep(0.05)
    took = time.time() - start
    print(f"{n} half-open sockets: {n - len(open_)} closed by the server after {took:.1f} s; "
          f"/status p99 {p99(lat):.1f} ms over {len(lat)} requests meanwhile")
    for s in socks:
        s.close()


def control_plane_under_load(n=20):
    stop = threading.Event()
    done = []

    def heavy(i):
        while not stop.is_set():
            done.append(timed_get(SLOW, {"X-Forwarded-For": f"198.51.100.{i + 1}"})[1])

    threads = [threading.Thread(target=heavy, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(1)
    lat = {"/status": [], "/metrics": [], "/v1/tables": []}
    end = time.time() + 15
    while time.time() < end:
        for path in lat:
            lat[path].append(timed_get(path)[0])
        time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    figures = ", ".join(f"{p} p99 {p99(v):.1f} ms" for p, v in lat.items())
    print(f"while {n} heavy queries run ({len(done)} finished): {figures}")


def job_flood(seconds=4, limit=4000):
    codes = {}
    end = time.time() + seconds
    sent = 0
    while time.time() < end and sent < limit:
        code = timed_get("/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-08"
                         "&asyncAfter=always")[1]
        codes[code] = codes.get(code, 0) + 1
        sent += 1
    print(f"job flood from one client for {seconds} s: {codes.get(202, 0)} accepted, "
          f"{codes.get(429, 0)} refused (429), other {sum(v for k, v in codes.items() if k not in (202, 429))}")


unread(20)
time.sleep(3)
unread(40)
time.sleep(3)
half_open()
control_plane_under_load()
job_flood()
