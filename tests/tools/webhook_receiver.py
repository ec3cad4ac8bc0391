#!/usr/bin/python3
# A webhook receiver for tests/integration/72-webhooks.sh, written with
# nothing but Python's standard library (not the gateway's code): it
# checks each delivery's Signgate-Signature as docs/OPERATIONS.md says a
# receiver should, and appends what it got to a log, one JSON line per
# delivery: {"path", "valid", "why", "event_id", "timestamp", "body"}.
#
# usage: webhook_receiver.py PORTFILE LOG PATH=SECRETFILE...
# Listens on 127.0.0.1 (the port in PORTFILE if it holds one, else any,
# written there; then PORTFILE.ready says it listens); answers 204 to a valid delivery, 401 otherwise.
import hashlib
import hmac
import http.server
import json
import os
import sys
import time


def main():
    portfile, logpath = sys.argv[1], sys.argv[2]
    secrets = {}
    for arg in sys.argv[3:]:
        path, _, secretfile = arg.partition("=")
        with open(secretfile, "rb") as f:
            secrets[path] = f.read().rstrip(b"\r\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            ts = self.headers.get("Signgate-Timestamp", "")
            sig = self.headers.get("Signgate-Signature", "")
            eid = self.headers.get("Signgate-Event-Id", "")
            why = ""
            secret = secrets.get(self.path)
            if secret is None:
                why = "unknown path"
            elif self.headers.get("Content-Type") != "application/json":
                why = "content type"
            elif not ts.isdigit() or abs(time.time() - int(ts)) > 300:
                why = "timestamp"
            else:
                mac = hmac.new(secret, ts.encode() + b"." + body,
                               hashlib.sha256).hexdigest()
                if not hmac.compare_digest("v1=" + mac, sig):
                    why = "signature"
            rec = {"path": self.path, "valid": why == "", "why": why,
                   "event_id": eid, "timestamp": ts,
                   "body": body.decode("utf-8", "replace")}
            with open(logpath, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(204 if why == "" else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    port = 0
    try:
        with open(portfile) as f:
            port = int(f.read().strip() or "0")
    except (OSError, ValueError):
        port = 0
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(portfile + ".tmp", portfile)
    # Listening: the test waits for this file.
    with open(portfile + ".ready", "w") as f:
        f.write("ready\n")
    srv.serve_forever()


if __name__ == "__main__":
    main()
