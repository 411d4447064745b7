"""``crossentropy explore``: a local page to move probabilities and watch the numbers.

A module of its own because it is a small web server, not a computation: the
standard library's ``ThreadingHTTPServer`` bound to 127.0.0.1 serves one
self-contained page (``_static/explore.html``, no network needed) and a JSON
API whose every number comes from the library itself:

- ``POST /api/compare`` ``{"p": [...], "q": [...], "base": 2 | null}`` returns
  H(P), H(Q), H(P,Q), H(Q,P), KL both ways and JS;
- ``POST /api/binary`` ``{"p": 0.7, "base": 2 | null}`` returns the
  cross-entropy of a positive target against ``p`` and the curve over ``p``.

Malformed requests get status 400 and ``{"error": message}``.
"""

from __future__ import annotations

import json
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ._information import cross_entropy, entropy, js_divergence, kl_divergence
from ._validation import InputError, check_base

__all__ = ["api_binary", "api_compare", "make_server"]

MAX_BODY = 1 << 16
MAX_EVENTS = 64


def _number(value: Any) -> float | str | None:
    v = float(value)
    if math.isnan(v):
        return None
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def _vector(payload: dict[str, Any], key: str) -> list[float]:
    values = payload.get(key)
    if not isinstance(values, list) or not values:
        raise InputError(f"{key.upper()} must be a non-empty list of numbers")
    if len(values) > MAX_EVENTS:
        raise InputError(f"{key.upper()} has {len(values)} events; at most {MAX_EVENTS}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{key.upper()}[{i}] = {v!r} is not a number")
        out.append(float(v))
    return out


def _base(payload: dict[str, Any]) -> float | None:
    base = payload.get("base")
    if base is not None and (isinstance(base, bool) or not isinstance(base, (int, float))):
        raise InputError(f"base must be a number or null, got {base!r}")
    return check_base(base)


def api_compare(payload: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the compare view."""
    p, q, b = _vector(payload, "p"), _vector(payload, "q"), _base(payload)
    if len(p) != len(q):
        raise InputError(f"P has {len(p)} events but Q has {len(q)}")
    values = {
        "H(P)": entropy(p, base=b),
        "H(Q)": entropy(q, base=b),
        "H(P,Q)": cross_entropy(p, q, base=b),
        "H(Q,P)": cross_entropy(q, p, base=b),
        "KL(P||Q)": kl_divergence(p, q, base=b),
        "KL(Q||P)": kl_divergence(q, p, base=b),
        "JS(P,Q)": js_divergence(p, q, base=b),
    }
    return {
        "unit": "nats" if b is None else ("bits" if b == 2 else f"log base {b:g}"),
        **{k: _number(v) for k, v in values.items()},
    }


def api_binary(payload: dict[str, Any]) -> dict[str, Any]:
    """Cross-entropy of a positive target against a predicted probability, and the whole curve."""
    p, b = payload.get("p"), _base(payload)
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise InputError(f"p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise InputError(f"p = {p!r} must lie in [0, 1]")
    grid = [i / 100 for i in range(1, 101)]
    curve = cross_entropy([0.0, 1.0], [[1 - x, x] for x in grid], base=b)
    value = cross_entropy([0.0, 1.0], [1 - float(p), float(p)], base=b)
    return {
        "p": float(p),
        "cross_entropy": _number(value),
        "curve": [[x, _number(c)] for x, c in zip(grid, curve, strict=True)],
    }


ROUTES = {"/api/compare": api_compare, "/api/binary": api_binary}


class _Handler(BaseHTTPRequestHandler):
    server_version = "crossentropy-explore"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the address only
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            page = resources.files("crossentropy").joinpath("_static/explore.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}"})

    def do_POST(self) -> None:
        route = ROUTES.get(self.path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no endpoint {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the request needs a JSON body of at most 64 KiB"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            if not isinstance(payload, dict):
                raise InputError("the request body must be a JSON object")
            self._json(HTTPStatus.OK, route(payload))
        except json.JSONDecodeError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"the request body is not JSON: {exc.msg}"})
        except InputError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})


def make_server(port: int = 0) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (port 0: a free one); call ``serve_forever`` or use :func:`serve_in_thread`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; return it and its address (for tests and notebooks)."""
    server = make_server(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, bound = server.server_address[:2]
    return server, f"http://{host!s}:{bound}/"
