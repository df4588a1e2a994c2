"""A real HTTP receiver for alert webhooks on loopback: a `http.server` thread that records
every POST and answers 503 to the first ones."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records every POST (headers, body); answers 503 to the first `fail_first` of them."""

    def __init__(self, port: int = 0, fail_first: int = 2) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = 503 if len(outer.requests) < outer.fail_first else 204
                outer.requests.append((dict(self.headers), body, code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, code in self.requests if code == 204]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
