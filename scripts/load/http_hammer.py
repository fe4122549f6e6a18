#!/usr/bin/env python3
"""Hammer the portal with requests on keep-alive connections for a while; print what it did.

    http_hammer.py HOST:PORT SECONDS [THREADS] [PATH...]

Each thread keeps one HTTP/1.1 connection and requests the paths in turn as fast as the
server answers (GET; a path starting with "POST " is posted a wrong login). Used by
scripts/load/run.sh --portal to show that portal load does not slow the SIP service.
"""
import http.client
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
seconds = float(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 16
paths = sys.argv[4:] or ["/login", "POST /login"]
stop = time.monotonic() + seconds
counts = {"ok": 0, "status": {}, "errors": 0}
lock = threading.Lock()


def worker():
    conn = None
    i = 0
    while time.monotonic() < stop:
        path = paths[i % len(paths)]
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            if path.startswith("POST "):
                body = "username=hammer&password=wrong&csrf=x"
                conn.request("POST", path[5:], body, {"Content-Type": "application/x-www-form-urlencoded"})
            else:
                conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            with lock:
                counts["ok"] += 1
                counts["status"][r.status] = counts["status"].get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception:
            with lock:
                counts["errors"] += 1
            if conn is not None:
                conn.close()
            conn = None


ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
start = time.monotonic()
for t in ts:
    t.start()
for t in ts:
    t.join()
elapsed = time.monotonic() - start
print(f"requests {counts['ok']} ({counts['ok'] / elapsed:.0f}/s), errors {counts['errors']}, statuses {dict(sorted(counts['status'].items()))}")
