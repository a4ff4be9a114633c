"""Loopback auth server and upstream for tests/traefik/smoke.sh.

    python3 smoke_servers.py AUTH_PORT UPSTREAM_PORT

Auth server (GET /oauth2/verify), an oauth2-proxy-style verifier:
  - `Cookie: session=ok`  -> 200 with X-Auth-Request-User/-Email
  - `Cookie: session=nouser` -> 200 without identity headers
  - anything else         -> 302 to http://login.invalid/oauth2/start?rd=<original URL>
    (the original URL is rebuilt from the X-Forwarded-* headers Traefik sends)
Every request it sees is appended, as one JSON line, to the file named by
$SMOKE_AUTH_LOG, so the smoke can check what Traefik forwarded.

Upstream (any path): 200 with a JSON body {"path": ..., "headers": {...}} of the
request it received.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Auth(Quiet):
    def do_GET(self):
        seen = {"path": self.path, "headers": dict(self.headers.items())}
        with open(os.environ["SMOKE_AUTH_LOG"], "a") as f:
            f.write(json.dumps(seen) + "\n")
        if not self.path.startswith("/oauth2/verify"):
            return self.reply(404)
        cookie = self.headers.get("Cookie", "")
        if "session=ok" in cookie:
            return self.reply(
                200,
                [("X-Auth-Request-User", "alice"), ("X-Auth-Request-Email", "alice@example.com")],
            )
        if "session=nouser" in cookie:
            return self.reply(200)
        rd = "%s://%s%s" % (
            self.headers.get("X-Forwarded-Proto", "http"),
            self.headers.get("X-Forwarded-Host", ""),
            self.headers.get("X-Forwarded-Uri", "/"),
        )
        self.reply(
            302,
            [("Location", "http://login.invalid/oauth2/start?rd=" + rd), ("Content-Type", "text/html")],
            b"<a href='http://login.invalid/oauth2/start'>Found</a>",
        )


class Upstream(Quiet):
    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.reply(200, [("Content-Type", "application/json")], body)


def main():
    auth_port, up_port = int(sys.argv[1]), int(sys.argv[2])
    servers = [
        ThreadingHTTPServer(("127.0.0.1", auth_port), Auth),
        ThreadingHTTPServer(("127.0.0.1", up_port), Upstream),
    ]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
