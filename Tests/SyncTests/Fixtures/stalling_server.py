#!/usr/bin/env python3
"""Serve a directory over HTTP/1.1 on 127.0.0.1, stalling on every request for the file named
NAME, as a mirror whose connection hangs does: MODE `silent` accepts the request and sends
nothing; MODE `partial` sends the headers and half the body (or of the Range asked for), then
nothing. The connection stays open until the client gives up. Other files are served whole.
Every request line and its Range header go to LOG.

usage: stalling_server.py ROOT PORTFILE LOG MODE NAME
"""
import http.server
import os
import sys
import time

root, port_file, log_path, mode, stalled = sys.argv[1:6]


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
        stall = os.path.basename(path) == stalled
        if stall and mode == "silent":
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
        if stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(3600)
            return
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
