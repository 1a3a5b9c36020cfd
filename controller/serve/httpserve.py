"""A small HTTP server for the metrics endpoint: one thread for all connections, each with a deadline.

Serves a WSGI app (prometheus_client's and the health checks, controller/serve/metrics.py) from an asyncio
loop of its own, in one daemon thread, so that the controller's event loop and its file writes never wait for
a client, and a client never waits for them. A connection costs no thread, must be done (request in,
response out) within REQUEST_TIMEOUT, and at most MAX_CONNECTIONS are open: the oldest one still sending its
request makes room for a new one, so hundreds of idle sockets neither exhaust the process's file descriptors
(which the hosts file needs) nor keep a scrape out (docs/architecture.md, decision 12). Requests are answered
with "Connection: close". No kopf here.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class ServeSettings:
    """``config.serve``: where /metrics, /healthz and /readyz are served ("0": nowhere)."""

    bind_address: str = "127.0.0.1:8080"


log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0  # seconds from accept to the response sent (a Prometheus scrape takes milliseconds)
MAX_CONNECTIONS = 64  # open at once
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_HEADERS = 100
BACKLOG = 128

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def address_family(host: str) -> socket.AddressFamily:
    """The socket family a bind host is served on: IPv6 for an address with a colon, else IPv4."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _BadRequest(Exception):
    pass


class HttpServer:
    """Serve ``app`` on ``address``; the socket is bound in the constructor (an OSError says why not)."""

    def __init__(self, address: tuple[str, int], app: WsgiApp, *, name: str = "metrics-http") -> None:
        self._sock = socket.socket(address_family(address[0]), socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(address)
            self._sock.listen(BACKLOG)
        except BaseException:
            self._sock.close()
            raise
        self.address: tuple[str, int] = (address[0], self._sock.getsockname()[1])
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._open: dict[asyncio.StreamWriter, bool] = {}  # connection -> still reading its request
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        self._started.wait()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection; returns when the thread has ended."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- the server's own thread

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, sock=self._sock, limit=MAX_HEAD)
            )
        finally:
            self._started.set()  # start() returns either way; a failure here is logged by the thread
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in list(self._open):
                writer.transport.abort()
            self._loop.run_until_complete(server.wait_closed())
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    def _make_room(self) -> None:
        """At the cap: drop the oldest connection that has not sent its whole request yet."""
        for writer, reading in self._open.items():
            if reading:
                writer.transport.abort()
                del self._open[writer]
                return

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= MAX_CONNECTIONS:
            self._make_room()
        if len(self._open) >= MAX_CONNECTIONS:  # every one is being answered: this one waits its turn
            writer.transport.abort()
            return
        self._open[writer] = True
        answered = False
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                try:
                    environ = await self._read_request(reader)
                except _BadRequest as err:
                    response = _response(
                        "400 Bad Request", [("Content-Type", "text/plain")], [f"{err}\n".encode()]
                    )
                else:
                    if environ is None:
                        return  # closed (or dropped to make room) before the request was complete
                    response = self._answer(environ)
                if writer in self._open:
                    self._open[writer] = False  # being answered: not the one to drop for room
                writer.write(response)
                writer.close()  # after the response has been sent
                await writer.wait_closed()
                answered = True
        except (TimeoutError, ConnectionError):
            pass  # a client too slow, or gone: nothing more to say to it
        except Exception as err:  # never a traceback per request in the controller's log
            log.debug("metrics connection failed: %r", err)
        finally:
            self._open.pop(writer, None)
            if not answered:
                writer.transport.abort()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                return None
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                raise _BadRequest("bad request line")
            method, target, protocol = parts
            if "://" in target.partition("?")[0]:  # absolute form (http://host:port/path): the path counts
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            path, _, query = target.partition("?")
            environ: dict[str, Any] = {
                "REQUEST_METHOD": method,
                "PATH_INFO": unquote(path, "latin-1"),
                "QUERY_STRING": query,
                "SERVER_PROTOCOL": protocol,
                "SERVER_NAME": self.address[0],
                "SERVER_PORT": str(self.address[1]),
                "SCRIPT_NAME": "",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
                "wsgi.errors": sys.stderr,
            }
            size = len(line)
            for _ in range(MAX_HEADERS + 1):
                line = await reader.readline()
                size += len(line)
                if not line.endswith(b"\n"):
                    return None
                if size > MAX_HEAD:
                    raise _BadRequest("request head too large")
                if not line.strip():
                    return environ
                name, sep, value = line.decode("latin-1").partition(":")
                if not sep:
                    raise _BadRequest("bad header line")
                key = name.strip().upper().replace("-", "_")
                if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    key = "HTTP_" + key
                environ[key] = value.strip()
            raise _BadRequest("too many header lines")
        except ValueError:  # a line over MAX_HEAD (the stream's limit)
            raise _BadRequest("request head too large") from None

    def _answer(self, environ: dict[str, Any]) -> bytes:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            started[:] = [status, headers]

        try:
            body = list(self._app(environ, start_response))
            status, headers = started
        except Exception as err:
            log.error("metrics endpoint failed: %r", err)
            status, headers, body = (
                "500 Internal Server Error",
                [("Content-Type", "text/plain")],
                [b"error\n"],
            )
        return _response(status, headers, body, head=environ["REQUEST_METHOD"] == "HEAD")


def _response(status: str, headers: list[tuple[str, str]], body: list[bytes], *, head: bool = False) -> bytes:
    """The whole response; for HEAD the headers of the GET (its Content-Length too), without the body."""
    payload = b"".join(body)
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "connection")]
    lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head else payload)
