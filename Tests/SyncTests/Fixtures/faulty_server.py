#!/usr/bin/env python3
"""Serve a directory over HTTP/1.1 on 127.0.0.1 the way a failing mirror does, for the files
named NAME...; other files are served whole, and `Range: bytes=N-` is honoured throughout.
FAULT is one of:
  drop     the connection breaks halfway through the first response for each NAME;
  silent   every request for a NAME is accepted and answered with nothing;
  partial  every response for a NAME sends the headers and half the body (of the Range asked
           for), then nothing.
A stalled connection stays open until the client gives up. Every request line and its Range
header go to LOG; the port goes to PORTFILE (written atomically) once the server listens.

usage: faulty_server.py ROOT PORTFILE LOG FAULT NAME...
"""
import http.server
import os
import sys
import time

root, port_file, log_path, fault = sys.argv[1:5]
names = set(sys.argv[5:])
if fault not in ("drop", "silent", "partial"):
    sys.exit(f"faulty_server.py: unknown FAULT {fault!r}: drop, silent or partial")
dropped = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range", "")
        with open(log_path, "a") as log:
            log.write(f"{self.path} {rng}\n")
        path = os.path.join(root, self.path.lstrip("/").split("?")[0])
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        name = os.path.basename(path)
        faulty = name in names and (fault != "drop" or name not in dropped)
        if faulty and fault == "silent":
            time.sleep(3600)
            return
        start = 0
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not faulty:
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if fault == "partial":
            time.sleep(3600)
            return
        dropped.add(name)
        self.close_connection = True
        self.connection.shutdown(2)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
