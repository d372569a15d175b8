"""A loopback HTTP server that keeps every form POST: the stand-in for an app that Twilio (or a
simulator of it) posts webhooks to. What it answers is the caller's ``answer(post)``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Post:
    path: str
    url: str  #: the full URL, as a Twilio signature is computed over it
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def signature(self) -> str:
        return self.headers.get("X-Twilio-Signature", "")


#: (status, content type, body)
Answer = tuple[int, str, bytes]


class FormServer:
    def __init__(self, answer: Callable[[Post], Answer]):
        self.answer = answer
        self.posts: list[Post] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                post = Post(
                    self.path,
                    server.url + self.path,
                    dict(self.headers),
                    dict(parse_qsl(body, keep_blank_values=True)),
                )
                server.posts.append(post)
                status, content_type, payload = server.answer(post)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
