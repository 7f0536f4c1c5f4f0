#!/usr/bin/python3
"""A stand-in for the archmerge binary, used ONLY to self-test the harness
(the `archmerge` fixture's start/wait/stop/log handling and webhook.send).
It is not a specification of archmerge's behaviour.

Usage: fake_archmerge.py serve -c CONFIG
Reads listen / tls certificate + private_key / webhook_path /
webhook_secret_file from the libconfig file (by regex), then answers
POST <webhook_path>: 401 on a wrong Authorization, 415 on a non-JSON
content type, 413 over 1 MiB, 400 on bad JSON, else 202; other methods 405.
"""

import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from http.server import BaseHTTPRequestHandler  # noqa: E402

from harness.tokensrv import TLSThreadingHTTPServer  # noqa: E402

MAX_BODY = 1 << 20


def setting(text, key):
    m = re.search(r'\b' + re.escape(key) + r'\s*=\s*"([^"]*)"', text)
    if not m:
        sys.exit(f"fake_archmerge: missing {key}")
    return m.group(1)


def main(argv):
    if len(argv) != 4 or argv[1] != "serve" or argv[2] != "-c":
        sys.exit("usage: fake_archmerge.py serve -c CONFIG")
    with open(argv[3]) as f:
        text = f.read()
    host, _, port = setting(text, "listen").rpartition(":")
    path = setting(text, "webhook_path")
    with open(setting(text, "webhook_secret_file")) as f:
        secret = f.read().strip()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("fake_archmerge: " + (fmt % args) + "\n")
            sys.stderr.flush()

        def reply(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def do_POST(self):
            if self.path != path:
                return self.reply(404, {"error": "not found"})
            if self.headers.get("Authorization") != secret:
                return self.reply(401, {"error": "unauthorized"})
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype not in ("application/json", "application/cloudevents+json"):
                return self.reply(415, {"error": "unsupported media type"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.reply(413, {"error": "payload too large"})
            try:
                json.loads(self.rfile.read(length))
            except ValueError:
                return self.reply(400, {"error": "bad json"})
            self.reply(202, {"status": "accepted"})

        def do_GET(self):
            self.reply(405, {"error": "method not allowed"})

        do_PUT = do_DELETE = do_GET

    server = TLSThreadingHTTPServer((host, int(port)), Handler, setting(text, "certificate"),
                                    setting(text, "private_key"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"fake_archmerge: listening on {host}:{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        sys.stderr.write("fake_archmerge: stopping\n")


if __name__ == "__main__":
    main(sys.argv)
