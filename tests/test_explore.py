"""crossentropy explore: the JSON API and the server's defences (the page itself: test_browser.py)."""

from __future__ import annotations

import concurrent.futures
import http.client
import itertools
import json
import math
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import crossentropy as ce
from crossentropy import _explore
from crossentropy._explore import serve_in_thread


@pytest.fixture(scope="module")
def server():
    srv, address = serve_in_thread()
    yield address
    srv.shutdown()
    srv.server_close()


def post(address, path, body, raw=None, headers=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        address + path.lstrip("/"),
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def raw_request(address, method, path, body=b"", headers=None):
    """One request with exactly the headers given (urllib would add its own Host)."""
    host, port = address.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_compare_endpoint(server):
    status, data = post(server, "/api/compare", {"p": [0.1, 0.4, 0.5], "q": [0.8, 0.15, 0.05], "base": 2})
    assert status == 200
    assert data["unit"] == "bits"
    assert data["H(P,Q)"] == pytest.approx(3.2879430946, abs=1e-10)
    assert data["KL(P||Q)"] == pytest.approx(1.9269790472, abs=1e-10)
    assert data["H(P,Q)"] == pytest.approx(data["H(P)"] + data["KL(P||Q)"], abs=1e-12)
    status, data = post(server, "/api/compare", {"p": [0.5, 0.5], "q": [1.0, 0.0], "base": None})
    assert data["unit"] == "nats"
    assert data["H(P,Q)"] == "inf"


def test_compare_endpoint_gives_each_events_terms(server):
    p, q = [0.1, 0.4, 0.5], [0.8, 0.15, 0.05]
    status, data = post(server, "/api/compare", {"p": p, "q": q, "base": 2})
    assert status == 200
    terms = data["terms"]
    assert [t["surprise_q"] for t in terms] == pytest.approx([-math.log2(v) for v in q], abs=1e-12)
    assert [t["cross_entropy"] for t in terms] == pytest.approx(
        [a * -math.log2(b) for a, b in zip(p, q, strict=True)], abs=1e-12
    )
    assert [t["kl_divergence"] for t in terms] == pytest.approx(
        [a * math.log2(a / b) for a, b in zip(p, q, strict=True)], abs=1e-12
    )
    assert sum(t["cross_entropy"] for t in terms) == pytest.approx(data["H(P,Q)"], abs=1e-12)
    assert sum(t["kl_divergence"] for t in terms) == pytest.approx(data["KL(P||Q)"], abs=1e-12)
    # 0 log 0 = 0: an event the truth rules out costs nothing, even where the model gives it 0; one it allows is inf
    terms = post(server, "/api/compare", {"p": [0.5, 0.5, 0.0], "q": [1.0, 0.0, 0.0], "base": None})[1]["terms"]
    assert terms[1] == {"surprise_q": "inf", "cross_entropy": "inf", "kl_divergence": "inf"}
    assert terms[2] == {"surprise_q": "inf", "cross_entropy": 0.0, "kl_divergence": 0.0}
    assert terms[0]["kl_divergence"] == pytest.approx(0.5 * math.log(0.5), abs=1e-15)


def test_binary_endpoint_gives_a_dense_curve(server):
    status, data = post(server, "/api/binary", {"p": 0.5, "base": None})
    assert status == 200
    assert data["cross_entropy"] == pytest.approx(math.log(2))
    xs = [x for x, _ in data["curve"]]
    assert xs == sorted(xs)
    assert xs[0] <= 0.001
    assert xs[-1] == 1.0
    assert len(xs) > 200
    assert max(b - a for a, b in itertools.pairwise(xs)) <= 0.005 + 1e-12
    for x, value in data["curve"]:
        assert value == pytest.approx(-math.log(x), abs=1e-12)
    assert post(server, "/api/binary", {"p": 0.0, "base": None})[1]["cross_entropy"] == "inf"
    assert post(server, "/api/binary", {"p": 0.25, "base": 2})[1]["cross_entropy"] == pytest.approx(2.0)


def test_predictions_endpoint_gives_each_loss_and_the_log_loss(server):
    y, p = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]
    status, data = post(server, "/api/predictions", {"y": y, "p": p, "base": None})
    assert status == 200
    assert data["mean"] == pytest.approx(0.2469198908, abs=1e-10)
    assert data["losses"][3] == pytest.approx(-math.log(0.6))
    assert data["p_true"][6] == pytest.approx(0.6)
    bits = post(server, "/api/predictions", {"y": y, "p": p, "base": 2})[1]
    assert bits["unit"] == "bits"
    assert bits["mean"] == pytest.approx(float(ce.log_loss(y, p)) / math.log(2), abs=1e-12)


def test_presets_are_the_seed_texts_examples(server):
    with urllib.request.urlopen(server + "api/presets", timeout=10) as response:
        data = json.loads(response.read())
    assert data["colours"] == {"names": ["red", "green", "blue"], "p": [0.1, 0.4, 0.5], "q": [0.8, 0.15, 0.05]}
    assert len(data["predictions"]["y"]) == len(data["predictions"]["p"]) == 10


@pytest.mark.parametrize(
    ("path", "body", "raw", "message"),
    [
        ("/api/compare", None, b"{not json", "not JSON"),
        ("/api/compare", [1, 2], None, "JSON object"),
        ("/api/compare", {"p": [0.5, 0.5]}, None, "Q must be a non-empty list"),
        ("/api/compare", {"p": [0.5, "x"], "q": [0.5, 0.5]}, None, "P[1] = 'x' is not a number"),
        ("/api/compare", {"p": [0.5, 0.6], "q": [0.5, 0.5]}, None, "sums to 1.1"),
        ("/api/compare", {"p": [0.5, 0.5], "q": [1.0]}, None, "P has 2 events but Q has 1"),
        ("/api/compare", {"p": [1.0], "q": [1.0], "base": 1}, None, "base must be"),
        ("/api/binary", {"p": 1.5}, None, "p = 1.5 must lie in [0, 1]"),
        ("/api/binary", {"p": "half"}, None, "p = 'half' is not a number"),
        ("/api/predictions", {"y": [1, 2], "p": [0.5, 0.5]}, None, "y[1] = 2.0; binary labels are 0 or 1"),
        ("/api/predictions", {"y": [1], "p": [0.5, 0.5]}, None, "y has 1 labels but p has 2"),
        # hostile bodies: each a 400 with a reason, never a dropped connection
        ("/api/compare", None, b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
        ("/api/binary", None, b'{"p": ' + b"9" * 4400 + b"}", "too large"),
        ("/api/binary", None, b'{"p": 1' + b"0" * 309 + b"}", "too large"),
        ("/api/binary", None, b'{"p": 1e400}', "too large"),
        ("/api/binary", None, b'{"p": NaN}', "NaN is not a number"),
        ("/api/binary", None, b'{"p": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_malformed_requests_get_400_and_a_message(server, path, body, raw, message):
    status, data = post(server, path, body, raw)
    assert status == 400
    assert message in data["error"]


def test_only_loopback_host_names_with_the_bound_port_are_answered(server):
    port = server.rstrip("/").rsplit(":", 1)[1]
    body = json.dumps({"p": 0.5}).encode()
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        headers = {"Host": host, "Content-Type": "application/json"}
        assert raw_request(server, "POST", "/api/binary", body, headers)[0] == 200, host
    for host in ("evil.example:80", f"evil.example:{port}", "localhost", "127.0.0.1:1", None):
        headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
        status, data = raw_request(server, "POST", "/api/binary", body, headers)
        assert status == 403, host
        assert "answers only" in data["error"]
        assert raw_request(server, "GET", "/", b"", {"Host": host} if host else {})[0] == 403


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_the_api_refuses_non_json_content_types(server, content_type):
    port = server.rstrip("/").rsplit(":", 1)[1]
    headers = {"Host": f"127.0.0.1:{port}", **({"Content-Type": content_type} if content_type else {})}
    status, data = raw_request(server, "POST", "/api/binary", b'{"p": 0.5}', headers)
    assert status == 415
    assert "application/json" in data["error"]
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert raw_request(server, "POST", "/api/binary", b'{"p": 0.5}', headers)[0] == 200


def test_unknown_paths_and_the_page(server):
    assert post(server, "/api/nothing", {})[0] == 404
    with urllib.request.urlopen(server, timeout=10) as response:
        page = response.read().decode()
        assert "nosniff" in response.headers["X-Content-Type-Options"]
    assert "crossentropy explore" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # no network assets
    assert ".innerHTML" not in page  # names and numbers are inserted as text, never as markup


@pytest.mark.slow
def test_idle_connections_time_out_and_the_connection_cap_holds(monkeypatch):
    monkeypatch.setattr(_explore._Handler, "timeout", 0.5)
    monkeypatch.setattr(_explore, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(_explore, "SLOT_WAIT", 0.2)
    srv, address = serve_in_thread()
    idle = []
    try:
        host, port = srv.server_address[:2]
        idle = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
        time.sleep(0.1)
        third = socket.create_connection((host, port), timeout=5)
        with third:
            assert third.recv(100).startswith(b"HTTP/1.0 503")
        for sock in idle:  # each idle connection is closed by the server after its timeout
            assert sock.recv(100) == b""
        assert post(address, "/api/binary", {"p": 0.5})[0] == 200  # the slots are free again
    finally:
        for sock in idle:
            sock.close()
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_300_concurrent_requests_are_all_answered(server):
    def one(i):
        return post(server, "/api/binary", {"p": (i % 100) / 100})[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=300) as pool:
        statuses = list(pool.map(one, range(300)))
    assert statuses == [200] * 300


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_cli():
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossentropy", "explore", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # as from a terminal: a shell starts `pytest &` and nohup with SIGINT ignored
    )
    line = proc.stdout.readline()
    assert "serving http://127.0.0.1:" in line, line + proc.stderr.read()
    return proc, line.split("serving ")[1].split()[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_cli_serves_and_stops_on_sigint_and_sigterm(signum):
    proc = None
    try:
        proc, address = _start_cli()
        assert post(address, "/api/binary", {"p": 0.5})[0] == 200
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc is not None and proc.poll() is None:  # the test failed with the server running
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_a_slow_drip_of_header_lines_does_not_hold_the_slots(monkeypatch):
    # issue 27.15: connections sending a header line every few seconds kept every slot, so every other
    # request got 503 for as long as the drip lasted; each connection now has one deadline in all
    monkeypatch.setattr(_explore._Handler, "timeout", 1.0)
    monkeypatch.setattr(_explore, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(_explore, "SLOT_WAIT", 0.2)
    srv, address = serve_in_thread()
    host, port = srv.server_address[:2]
    drips = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
    try:
        for sock in drips:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        cut = [False] * len(drips)
        statuses = []
        start = time.monotonic()
        while time.monotonic() - start < 4.0:  # a header line every 0.3 s: each read is well within 1 s
            for i, sock in enumerate(drips):
                try:
                    sock.sendall(b"X-Drip: 1\r\n")
                    sock.settimeout(0.01)
                    cut[i] = cut[i] or sock.recv(100) == b""
                except TimeoutError:
                    pass
                except OSError:
                    cut[i] = True
            if time.monotonic() - start > 1.5 and len(statuses) < 3:
                statuses.append(post(address, "/api/binary", {"p": 0.5})[0])
            time.sleep(0.3)
        assert cut == [True, True]  # the server closed both drips once their second was up
        assert statuses == [200, 200, 200]
    finally:
        for sock in drips:
            sock.close()
        srv.shutdown()
        srv.server_close()
