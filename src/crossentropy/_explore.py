"""``crossentropy explore``: a local page to move probabilities and watch the numbers.

A module of its own because it is a small web server, not a computation: the
standard library's ``ThreadingHTTPServer`` bound to 127.0.0.1 serves one
self-contained page (``_static/explore.html``, no network needed) and a JSON
API whose every number comes from the library itself:

- ``POST /api/compare`` ``{"p": [...], "q": [...], "base": 2 | null}`` returns
  H(P), H(Q), H(P,Q), H(Q,P), KL both ways and JS, and each event's terms of the
  sums (``-log Q(x)``, ``P(x) (-log Q(x))``, ``P(x) log(P(x) / Q(x))``);
- ``POST /api/binary`` ``{"p": 0.7, "base": 2 | null}`` returns the
  cross-entropy of the true class against the probability ``p`` the model
  gives it, and the curve over ``p`` (dense near 0, where it is steep);
- ``POST /api/predictions`` ``{"y": [0, 1, ...], "p": [...], "base": ...}``
  returns the binary cross-entropy of each prediction and their mean;
- ``GET /api/presets`` returns the seed texts' examples (the three colours,
  the ten binary predictions) that the page offers as starting points.

The server is for one person on one machine, and defends itself as such: it
answers only requests addressed to the loopback name and port it is bound to
(a web page elsewhere cannot reach it by DNS rebinding), takes only JSON
bodies of at most 64 KiB (400 for anything it cannot parse, however deep or
badly encoded), gives each connection :data:`TIMEOUT` seconds in all, from
its first byte to its last (a client that sends a header line every few
seconds is cut off all the same), and serves at most :data:`MAX_CONNECTIONS`
at once (more wait in a backlog of :data:`BACKLOG`, then get 503). Malformed
requests get status 4xx and ``{"error": message}``.
"""

from __future__ import annotations

import io
import json
import math
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ._comparison import comparison
from ._formatting import json_number, unit_name
from ._information import cross_entropy, information
from ._validation import InputError, check_base

__all__ = ["api_binary", "api_compare", "api_predictions", "make_server", "serve_in_thread"]

MAX_BODY = 1 << 16
MAX_EVENTS = 64
MAX_PREDICTIONS = 1000
TIMEOUT = 10.0
MAX_CONNECTIONS = 64
SLOT_WAIT = 2.0  # seconds a new connection waits for a free slot (in the backlog) before a 503
BACKLOG = 128
# The binary curve: fine steps near 0, where -log p is steep, then every 0.005 up to 1.
CURVE_GRID = sorted({i / 10_000 for i in range(5, 100, 5)} | {i / 1000 for i in range(10, 1001, 5)})


class _BadRequest(ValueError):
    """A request body that is not a JSON object the API can read."""


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} = {value!r} is not a number")
    return float(value)


def _vector(payload: dict[str, Any], key: str, limit: int = MAX_EVENTS) -> list[float]:
    values = payload.get(key)
    name = key.upper() if len(key) == 1 else key
    if not isinstance(values, list) or not values:
        raise InputError(f"{name} must be a non-empty list of numbers")
    if len(values) > limit:
        raise InputError(f"{name} has {len(values)} entries; at most {limit}")
    return [_real(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _base(payload: dict[str, Any]) -> float | None:
    base = payload.get("base")
    if base is not None and (isinstance(base, bool) or not isinstance(base, (int, float))):
        raise InputError(f"base must be a number or null, got {base!r}")
    return check_base(base)


def api_compare(payload: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the compare view: entropies, cross-entropies and divergences of P and Q."""
    p, q, b = _vector(payload, "p"), _vector(payload, "q"), _base(payload)
    if len(p) != len(q):
        raise InputError(f"P has {len(p)} events but Q has {len(q)}")
    values = comparison(p, q, base=b)
    return {"unit": unit_name(b), **{k: json_number(v) for k, v in values.items()}, "terms": _terms(p, q, b)}


def _terms(p: list[float], q: list[float], b: float | None) -> list[dict[str, Any]]:
    """Each event's surprise ``-log Q(x)`` and its terms of H(P, Q) and KL(P || Q); 0 where P(x) = 0."""
    surprise_q, surprise_p = information(q, base=b), information(p, base=b)
    return [
        {
            "surprise_q": json_number(sq),
            "cross_entropy": json_number(pi * sq if pi else 0.0),
            "kl_divergence": json_number(pi * (sq - sp) if pi else 0.0),
        }
        for pi, sq, sp in zip(p, surprise_q.tolist(), surprise_p.tolist(), strict=True)
    ]


def api_binary(payload: dict[str, Any]) -> dict[str, Any]:
    """Cross-entropy of the true class against the probability the model gives it, and the whole curve."""
    b = _base(payload)
    p = _real(payload.get("p"), "p")
    if not 0 <= p <= 1:
        raise InputError(f"p = {p!r} must lie in [0, 1]")
    curve = cross_entropy([0.0, 1.0], [[1 - x, x] for x in CURVE_GRID], base=b)
    value = cross_entropy([0.0, 1.0], [1 - p, p], base=b)
    return {
        "unit": unit_name(b),
        "p": p,
        "cross_entropy": json_number(value),
        "curve": [[x, json_number(c)] for x, c in zip(CURVE_GRID, curve, strict=True)],
    }


def api_predictions(payload: dict[str, Any]) -> dict[str, Any]:
    """Binary cross-entropy of each prediction (label ``y``, probability ``p`` of class 1) and the mean."""
    from . import binary_cross_entropy

    b = _base(payload)
    y = _vector(payload, "y", MAX_PREDICTIONS)
    p = _vector(payload, "p", MAX_PREDICTIONS)
    if len(y) != len(p):
        raise InputError(f"y has {len(y)} labels but p has {len(p)} predictions")
    bad = next((i for i, v in enumerate(y) if v not in (0.0, 1.0)), None)
    if bad is not None:
        raise InputError(f"y[{bad}] = {y[bad]!r}; binary labels are 0 or 1")
    scale = 1.0 if b is None else 1.0 / math.log(b)
    losses = binary_cross_entropy(y, p, reduction="none")
    mean = binary_cross_entropy(y, p)
    return {
        "unit": unit_name(b),
        "p_true": [pi if yi == 1 else 1 - pi for yi, pi in zip(y, p, strict=True)],
        "losses": [json_number(v * scale) for v in losses],
        "mean": json_number(mean * scale),
    }


def api_presets() -> dict[str, Any]:
    """The seed texts' examples, the page's starting points."""
    from ._tutorial import COLOURS, P10, Y10, P, Q

    return {
        "colours": {"names": COLOURS, "p": P, "q": Q},
        "predictions": {"y": Y10, "p": P10},
    }


ROUTES = {"/api/compare": api_compare, "/api/binary": api_binary, "/api/predictions": api_predictions}


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadRequest(f"the number {text[:20]} is too large")
    return value


def _reject_constant(text: str) -> Any:
    raise _BadRequest(f"{text} is not a number the API accepts")


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body, or :class:`_BadRequest` saying why not.

    Numbers become floats and must be finite (an integer of 4300 digits or
    ``1e400`` is refused, as are ``NaN`` and ``Infinity``); nesting too deep
    to parse, invalid UTF-8 and anything but an object are refused too.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRequest(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        payload = json.loads(text, parse_int=_finite_float, parse_float=_finite_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"the request body is not JSON: {exc.msg}") from None
    except RecursionError:
        raise _BadRequest("the request body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise _BadRequest("the request body must be a JSON object")
    return payload


class _Deadline:
    """The moment a connection's time is up; :meth:`arm` gives the socket what is left before each read or write."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.end = time.monotonic() + seconds

    def arm(self) -> None:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the connection's time is up")
        self.sock.settimeout(left)


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, each read bounded by what is left of the connection's deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.deadline.arm()
        return self.deadline.sock.recv_into(buffer)


class _DeadlineWriter(io.BufferedIOBase):
    """Writes to a socket, each bounded by what is left of the connection's deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        self.deadline = deadline

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.deadline.arm()
        self.deadline.sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes


class _Handler(BaseHTTPRequestHandler):
    server_version = "crossentropy-explore"
    timeout = TIMEOUT  # seconds a connection has in all, reading the request and writing the response
    server: _Server

    def setup(self) -> None:
        """The request's streams, every read and write bounded by one deadline :attr:`timeout` seconds away.

        A socket timeout alone bounds each read, so a client sending a byte
        every few seconds could hold its connection, and a slot, for ever.
        """
        self.connection = self.request
        deadline = _Deadline(self.connection, self.timeout)
        self.rfile = io.BufferedReader(_DeadlineReader(deadline))
        self.wfile = _DeadlineWriter(deadline)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the address only
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'unsafe-inline' 'self'; "
            "script-src 'unsafe-inline' 'self'; img-src 'self' data:",
        )
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _host_ok(self) -> bool:
        """Only the names of the loopback address with the bound port (no DNS rebinding)."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host in self.server.allowed_hosts:
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": f"this server answers only {sorted(self.server.allowed_hosts)}"})
        return False

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        if self.path in ("/", "/index.html"):
            page = resources.files("crossentropy").joinpath("_static/explore.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif self.path == "/api/presets":
            self._json(HTTPStatus.OK, api_presets())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        route = ROUTES.get(self.path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no endpoint {self.path}"})
            return
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "the API takes Content-Type: application/json"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the request needs a JSON body of at most 64 KiB"})
            return
        try:
            payload = parse_body(self.rfile.read(length))
            self._json(HTTPStatus.OK, route(payload))
        except (_BadRequest, InputError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})


class _Server(ThreadingHTTPServer):
    """A threading server with a connection cap, a deeper backlog and a Host allow-list."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        bound = self.server_address[1]
        self.allowed_hosts = {f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]")}
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(timeout=SLOT_WAIT):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (closed tab, timeout) is not an error worth a traceback."""
        import sys

        if isinstance(sys.exception(), (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def _refuse(self, request: socket.socket) -> None:
        body = b'{"error": "too many connections; try again"}'
        try:
            request.settimeout(1.0)
            request.sendall(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        except OSError:
            pass
        finally:
            self.shutdown_request(request)


def make_server(port: int = 0) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (port 0: a free one); call ``serve_forever`` or use :func:`serve_in_thread`."""
    return _Server(port)


def serve_in_thread(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; return it and its address (for tests and notebooks)."""
    server = make_server(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, bound = server.server_address[:2]
    return server, f"http://{host!s}:{bound}/"
