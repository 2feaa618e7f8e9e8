# SPDX-License-Identifier: Apache-2.0
"""HTTP peers for tests/scripts/test-cli-lock.sh (Python standard library only).

    python3 lockbed.py WORKDIR UPSTREAM_URL

Listens on 127.0.0.1 (any free port, written to WORKDIR/port once listening) and
logs one line per event to WORKDIR/lockbed.log:

  /slow...   any method: answers HTTP 200 with a Content-Length of 100000 and then
             sends one byte per second until the client goes away (at most 300 s).
             Logs "slow METHOD PATH OPERATION" when the request arrives.
  /late...   a proxy to UPSTREAM_URL (the query string and body are passed on):
             GetCACert and GetCACaps are answered at once; for PKIOperation the
             upstream's whole answer is fetched, "late PKIOperation received" is
             logged, and the answer is held until the file WORKDIR/release exists
             (at most 60 s), then sent ("late PKIOperation answered", or
             "late PKIOperation not delivered" when the client has gone).
"""
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORK = sys.argv[1]
UPSTREAM = sys.argv[2]
LOG_LOCK = threading.Lock()


def log(line):
    with LOG_LOCK, open(os.path.join(WORK, "lockbed.log"), "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: our own log only
        pass

    def operation(self):
        q = urllib.parse.urlparse(self.path).query
        return urllib.parse.parse_qs(q).get("operation", [""])[0]

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def slow(self, method):
        self.body()
        log("slow %s %s %s" % (method, urllib.parse.urlparse(self.path).path, self.operation()))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(300):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass
        self.close_connection = True

    def late(self, method):
        data = self.body() if method == "POST" else None
        q = urllib.parse.urlparse(self.path).query
        req = urllib.request.Request(UPSTREAM + ("?" + q if q else ""), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", self.headers.get("Content-Type") or
                           "application/x-pki-message")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, ctype, payload = r.status, r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            status, ctype, payload = e.code, e.headers.get("Content-Type"), e.read()
        op = self.operation()
        if op == "PKIOperation":
            log("late PKIOperation received")
            release = os.path.join(WORK, "release")
            for _ in range(600):
                if os.path.exists(release):
                    break
                time.sleep(0.1)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            if op == "PKIOperation":
                log("late PKIOperation answered")
        except OSError:
            if op == "PKIOperation":
                log("late PKIOperation not delivered")
        self.close_connection = True

    def handle_method(self, method):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/slow"):
            self.slow(method)
        elif path.startswith("/late"):
            self.late(method)
        else:
            self.send_error(404)

    def do_GET(self):
        self.handle_method("GET")

    def do_POST(self):
        self.handle_method("POST")


class Server(ThreadingHTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(os.path.join(WORK, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(WORK, "port.tmp"), os.path.join(WORK, "port"))
srv.serve_forever()
