#!/usr/bin/env python3
"""Serve a directory over HTTP/1.1 on 127.0.0.1, dropping the connection halfway through the
first response for each file named in --drop, and honouring `Range: bytes=N-` afterwards, as a
mirror whose connection breaks does. Every request line and its Range header go to --log.

usage: dropping_server.py ROOT PORTFILE LOG DROP...
"""
import http.server
import os
import sys

root, port_file, log_path, drops = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
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
        if name in drops and name not in dropped:
            dropped.add(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
