"""Servers that are not Sage FRP 1000, on loopback ports of their own: where a connector's key must never go, and
what « Tester la connexion » must not mistake for Sage.

- ``ForeignHTTPServer``: any HTTP server; records each request's headers and answers what the test says;
- ``banner_server``: an open port that speaks something else (an SSH banner), then hangs up;
- ``silent_server``: an open port that accepts and never answers;
- ``drip_server``: an HTTP answer that never ends, one byte every half second;
- ``odd_length_server``: a whole JSON answer whose ``Content-Length`` is « ² » (a Latin-1 byte that passes
  ``str.isdigit``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ForeignHTTPServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.body = b'{"status": "up"}'
        self.content_type = "application/json"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append({"path": self.path, "headers": dict(self.headers)})
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, body: bytes, *, status: int = 200, content_type: str = "application/json") -> None:
        self.body, self.status, self.content_type = body, status, content_type

    def authorizations(self) -> list[str]:
        return [request["headers"].get("Authorization", "") for request in self.requests]

    def __enter__(self) -> ForeignHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def _tcp_server(serve) -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def loop():
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except OSError:
                continue
            connections.append(connection)
            threading.Thread(target=serve, args=(connection, stop), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.close()
        listener.close()


def _banner(connection: socket.socket, stop: threading.Event) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        connection.close()


def _silent(connection: socket.socket, stop: threading.Event) -> None:
    stop.wait(30)


def _drip(connection: socket.socket, stop: threading.Event) -> None:
    with contextlib.suppress(OSError):
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            connection.sendall(b" ")
            time.sleep(0.5)


def _odd_length(connection: socket.socket, stop: threading.Event) -> None:
    with contextlib.suppress(OSError):
        connection.recv(65536)
        body = b'{"status": "up", "version": "1"}'
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \xb2\r\n")
        connection.sendall(b"Connection: close\r\n\r\n" + body)
        connection.close()


def odd_length_server():
    return _tcp_server(_odd_length)


def banner_server():
    return _tcp_server(_banner)


def silent_server():
    return _tcp_server(_silent)


def drip_server():
    return _tcp_server(_drip)
