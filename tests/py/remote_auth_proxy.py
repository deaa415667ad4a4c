"""Token-auth reverse proxy in front of a `chroma run` server, for chromalite's remote tests.

Why a proxy: chromadb 1.5.9's `chroma run` is the Rust frontend, which ignores
CHROMA_SERVER_AUTHN_PROVIDER / CHROMA_SERVER_AUTHN_CREDENTIALS (its auth layer is a no-op in the
open-source build: a wrong token gets 200), and chromadb's Python FastAPI server, which does
implement token auth, needs `fastapi`, which chromadb 1.5.9 only lists as a dev extra. Chroma's
documented way to protect a single-node server is a proxy in front of it; this one answers
exactly as chromadb's `TokenAuthenticationServerProvider` does: a missing or wrong token gets
403 {"error": "AuthError", "message": "Forbidden"}, and the token may come as `x-chroma-token:
T` or `Authorization: Bearer T`. Heartbeat and version stay open, as on chromadb's server.

Usage: REMOTE_AUTH_PROXY_TOKEN=T python remote_auth_proxy.py --port P --upstream http://127.0.0.1:Q
Standard library only.
"""

import argparse
import hmac
import http.client
import json
import os
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPEN_PATHS = {"/api/v2/heartbeat", "/api/v2/version"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


def presented_token(headers):
    token = headers.get("x-chroma-token")
    if token is not None:
        return token.strip()
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):].strip()
    return None


def make_handler(upstream, token):
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep test output quiet; never log headers
            pass

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def forward(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            path = urllib.parse.urlsplit(self.path).path
            if path not in OPEN_PATHS:
                given = presented_token(self.headers)
                if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                    forbidden = json.dumps({"error": "AuthError", "message": "Forbidden"}).encode()
                    return self.reply(403, forbidden, [("content-type", "application/json")])
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as e:
                return self.reply(502, json.dumps({"error": "BadGateway", "message": str(e)}).encode())
            finally:
                conn.close()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
            self.reply(resp.status, data, kept)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    token = os.environ["REMOTE_AUTH_PROXY_TOKEN"]
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.upstream, token))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
