"""A hostile client against real `mlcontainer serve` processes: framings, floods, slow clients.

Every test here sends the request the way a hostile client does (raw sockets: chunked
bodies, half-closes, broken chunk framing, slowloris heads) and would have passed a partial
body, answered 500 or HTML, or let the service go down before issue 14.
"""

from __future__ import annotations

import json
import os
import random
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    chunked,
    head,
    memory_kib,
    post,
    send,
    slow_clients,
    timed_get,
    worker_pids,
)
from serving_support import IRIS_ROW, PENGUIN_ROW, LiveServer, free_port, wait_ready

pytestmark = pytest.mark.slow

LIMIT = 10 * 1024 * 1024  # the default MLCONTAINER_MAX_BODY_BYTES
CSV_HEADER = ",".join(IRIS_ROW).encode()
CSV_ROW = b"5.1,3.5,1.4,0.2"
ROUTES = ("/predict", "/invocations", "/v2/models/{name}/infer")


def _serve(model_dir: Path, log: Path, *args: str) -> LiveServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PORT"] = str(port)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model_dir), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = LiveServer(process, port, log)
    wait_ready(server)
    return server


@pytest.fixture(scope="module")
def live(iris_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ONNX server for the tests that do not stop it."""
    server = _serve(iris_model_dir, tmp_path_factory.mktemp("live") / "server.log")
    yield server
    server.stop()


def _model_name(live: LiveServer) -> str:
    with urllib.request.urlopen(live.url + "/model", timeout=10) as r:
        return str(json.load(r)["name"])


def _name(route: str, live: LiveServer) -> str:
    return route.format(name=_model_name(live)) if "{name}" in route else route


def _json_rows(n: int) -> bytes:
    return json.dumps({"instances": [IRIS_ROW] * n}).encode()


def _v2_rows(n: int) -> bytes:
    data = [v for _ in range(n) for v in IRIS_ROW.values()]
    tensor = {"name": "input-0", "shape": [n, 4], "datatype": "FP64", "data": data}
    return json.dumps({"inputs": [tensor]}).encode()


def _body(route: str, n: int) -> tuple[bytes, str]:
    if route == "/invocations":
        return CSV_HEADER + b"\n" + b"\n".join([CSV_ROW] * n) + b"\n", "text/csv"
    if route.startswith("/v2"):
        return _v2_rows(n), "application/json"
    return _json_rows(n), "application/json"


def _is_json_error(answer: Any, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert "error" in answer.json()


# --- 1. a body is read whole or refused -----------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_over_the_limit_is_refused_not_cut(live: LiveServer, route: str) -> None:
    """9 000 CSV rows (11.8 MB) chunked got 200 with 7 980 predictions before: fewer rows than
    the row limit, more bytes than the body limit."""
    if route == "/invocations":
        padded = CSV_ROW.replace(b",", b"," + b" " * 400)  # spaces before a value are skipped
        body, media = CSV_HEADER + b"\n" + b"\n".join([padded] * 9000) + b"\n", "text/csv"
    else:
        body, media = _body(route, 9000)
        body = body.replace(b", ", b"," + b" " * 300)  # JSON whitespace: the same 9 000 rows
    assert len(body) > LIMIT
    answer = send(
        live.port,
        head("POST", _name(route, live), {"Content-Type": media, "Transfer-Encoding": "chunked"})
        + chunked(body),
    )
    _is_json_error(answer, 413)


def test_valid_json_then_megabytes_of_padding_is_refused(live: LiveServer) -> None:
    body = _json_rows(1) + b" " * LIMIT + b"garbage"
    answer = send(
        live.port,
        head("POST", "/predict", {"Content-Type": "application/json",
                                  "Transfer-Encoding": "chunked"}) + chunked(body),
    )  # fmt: skip
    _is_json_error(answer, 413)


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_shorter_than_its_content_length_is_refused(live: LiveServer, route: str) -> None:
    """A half-close after 49 of 100 rows got 200 with 49 predictions before."""
    body, media = _body(route, 100)
    given = {"Content-Type": media, "Content-Length": str(len(body))}
    answer = send(live.port, head("POST", _name(route, live), given) + body[: len(body) // 2],
                  half_close=True)  # fmt: skip
    _is_json_error(answer, 400)
    assert "Content-Length" in json.dumps(answer.json())


@pytest.mark.parametrize("framing", [b"zz\r\n", b"-1\r\n", b"0x10\r\n", b"4\r\n1234"])
@pytest.mark.parametrize("route", ROUTES)
def test_broken_chunk_framing_is_a_json_400(live: LiveServer, route: str, framing: bytes) -> None:
    given = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    answer = send(live.port, head("POST", _name(route, live), given) + framing + b"0\r\n\r\n",
                  half_close=True)  # fmt: skip
    _is_json_error(answer, 400)
    if route.startswith("/v2"):
        assert isinstance(answer.json()["error"], str)  # the protocol's own shape


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431),
        (
            b"GET /health HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
            431,
        ),
        (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", 400),
    ],
    ids=["long URI", "long header", "many headers", "bad version", "binary request line"],
)
def test_the_servers_own_parse_errors_are_json(live: LiveServer, raw: bytes, status: int) -> None:
    _is_json_error(send(live.port, raw), status)


_FRAMED = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}


@pytest.mark.parametrize(
    ("raw", "status", "said"),
    [
        (head("POST", "/predict", {**_FRAMED, "Content-Length": "5"}) + b"{}", 400,
         "Invalid HTTP Header"),
        (head("POST", "/predict", {**_FRAMED, "Transfer-Encoding": "br, chunked"}) + b"5\r\n{",
         501, "Unsupported transfer coding"),
        (b"GET /health HTTP/1.1\nHost: x\n\n", 400, "bare line feed"),
        (bytes.fromhex("160301020001000100fc0303") + bytes(64), 400, "HTTP request line"),
    ],
    ids=["Transfer-Encoding and Content-Length", "unknown coding", "bare LF", "TLS hello"],
)  # fmt: skip
def test_framing_that_can_never_be_read_is_answered_at_once(
    live: LiveServer, raw: bytes, status: int, said: str
) -> None:
    """Each waited the 10 s request timeout for a 408; the client here keeps its connection
    open and waits 5 s at most."""
    answer = send(live.port, raw, timeout=5)
    _is_json_error(answer, status)
    assert said in answer.json()["error"]["message"]


def test_a_gzip_body_is_415_on_every_protocol(live: LiveServer) -> None:
    import gzip

    for route in ROUTES:
        body, media = _body(route, 1)
        answer = post(live.port, _name(route, live), gzip.compress(body), media,
                      **{"Content-Encoding": "gzip"})  # fmt: skip
        _is_json_error(answer, 415)


@pytest.fixture(scope="module")
def penguins_live(
    penguins_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """An ONNX server with categorical features (onnxruntime encodes their strings)."""
    server = _serve(penguins_model_dir, tmp_path_factory.mktemp("penguins") / "server.log")
    yield server
    server.stop()


@pytest.mark.parametrize("route", ROUTES)
def test_a_lone_surrogate_is_a_400_with_onnx(penguins_live: LiveServer, route: str) -> None:
    """onnxruntime raised UnicodeEncodeError on it: a 500 on all three protocols before."""
    record = {**PENGUIN_ROW, "island": "\ud800"}
    if route == "/invocations":
        body = json.dumps({"dataframe_records": [record]})
    elif route.startswith("/v2"):
        tensors = [
            {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
             "data": [v]}
            for k, v in record.items()
        ]  # fmt: skip
        body = json.dumps({"inputs": tensors})
    else:
        body = json.dumps({"instances": [record]})
    assert "\\ud800" in body
    _is_json_error(post(penguins_live.port, _name(route, penguins_live), body.encode()), 400)


@pytest.mark.parametrize("where", ["unknown feature", "V2 input name"])
def test_a_5_mb_bad_value_gets_a_short_error(live: LiveServer, where: str) -> None:
    value = "x" * 5_000_000
    if where == "unknown feature":
        path, body = "/predict", {"instances": [{**IRIS_ROW, value: 1}]}
    else:
        tensor = {"name": value, "shape": [1], "datatype": "FP64", "data": [1.0]}
        path, body = _name(ROUTES[2], live), {"inputs": [tensor]}
    answer = post(live.port, path, json.dumps(body).encode())
    assert 400 <= answer.status < 500, answer.status
    assert value[:100] in answer.body.decode()
    assert len(answer.body) < 3000


# --- 7. memory per request is bounded before the work ------------------------------------------


def test_a_request_at_the_body_limit_costs_under_100_mib(live: LiveServer) -> None:
    """2.6 M empty rows in 7.8 MB grew the worker from 82 to 1 065 MiB before."""
    (worker,) = worker_pids(live.process.pid)
    idle = memory_kib(worker, "VmRSS")
    floods = {
        "/predict": [
            b'{"instances": [' + b"[]," * 2_600_000 + b"[]]}",
            b'{"instances": [[' + b"1.5," * (LIMIT // 5) + b"1]]}",
            b'{"instances": [{"' + b"k" * (LIMIT - 100) + b'": 1}]}',
            b'{"instances": [' + b'"a",' * (LIMIT // 5) + b'"a"]}',
            b'{"instances": [{"a": "' + b"x" * (LIMIT - 100) + b'"}]}',
        ],
        "/invocations": [CSV_HEADER + b"\n" + b"\n" * (LIMIT - 200), b"," * (LIMIT - 10)],
        f"/v2/models/{_model_name(live)}/infer": [
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": ['
            + b"[[]]," * (LIMIT // 6)
            + b"[]]}]}",
        ],
    }
    for route, bodies in floods.items():
        for body in bodies:
            assert len(body) <= LIMIT
            media = (
                "text/csv" if route == "/invocations" and body[:1] != b"{" else "application/json"
            )
            answer = post(live.port, route, body, media)
            assert 400 <= answer.status < 500, (route, body[:60], answer)
    grown = (memory_kib(worker, "VmHWM") - idle) / 1024
    assert grown <= 100, f"the worker grew {grown:.0f} MiB over idle"


# --- 9. metric labels are bounded --------------------------------------------------------------


def test_random_methods_fold_into_one_metrics_label(live: LiveServer) -> None:
    rng = random.Random(14)
    for _ in range(300):
        method = "".join(rng.choices(string.ascii_uppercase, k=8))
        assert send(live.port, head(method, "/predict")).status in (404, 405)
    with urllib.request.urlopen(live.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    methods = {m for m in (line.partition('method="')[2].partition('"')[0]
                           for line in text.splitlines()) if m}  # fmt: skip
    assert methods <= {"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}
    assert "other" in methods
    assert len(text) < 20_000


# --- 4, 5: shutdown ---------------------------------------------------------------------------


def test_an_idle_onnx_server_exits_0_within_2_s_of_sigterm(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    """The workers hung at exit on the master's onnxruntime thread: 8.2 s with the defaults."""
    server = _serve(iris_model_dir, tmp_path / "server.log", "--graceful-timeout", "20")
    started = time.perf_counter()
    assert server.stop(timeout=30) == 0
    assert time.perf_counter() - started < 2.0, server.log()


def test_sigterm_under_load_answers_every_accepted_request(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    """16 clients, each posting on a new connection: 14 got resets before (of 16)."""
    server = _serve(iris_model_dir, tmp_path / "server.log")
    body = _json_rows(200)
    outcomes: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(400):
            try:
                answer = post(server.port, "/predict", body)
            except ConnectionRefusedError:
                outcome = "refused"  # never accepted: the listening socket is gone
            except (ConnectionResetError, BrokenPipeError):
                outcome = "reset"
            else:
                closed = answer.headers.get("connection") == "close"
                ok = answer.status == 200 or (answer.status == 503 and closed)
                outcome = "answered" if ok and not answer.reset else f"bad {answer}"
            with lock:
                outcomes.append(outcome)
            if outcome == "refused":
                return

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stopped = time.perf_counter()
    assert server.stop(timeout=30) == 0
    took = time.perf_counter() - stopped
    for t in threads:
        t.join(timeout=30)
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    assert set(counts) == {"answered", "refused"}, (counts, server.log()[-3000:])
    assert counts["refused"] == 16
    assert took < 8, took


def test_a_reload_keeps_accepting_new_connections(iris_model_dir: Path, tmp_path: Path) -> None:
    """SIGHUP replaces the workers; the old ones stop as on SIGTERM, but the master keeps the
    listening socket, so they must not stop it accepting (the new workers share it)."""
    server = _serve(iris_model_dir, tmp_path / "server.log")
    try:
        before = set(worker_pids(server.process.pid))
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = set(worker_pids(server.process.pid))
            if now and not now & before:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the workers were not replaced: {server.log()[-2000:]}")
        body = _json_rows(5)
        for _ in range(20):  # each on a new connection
            assert post(server.port, "/predict", body).status == 200
    finally:
        assert server.stop(timeout=30) == 0


# --- 6. slow clients ------------------------------------------------------------------------


def test_200_slow_clients_leave_health_answering_within_1_s(live: LiveServer) -> None:
    """200 connections sending their heads slowly: 10 of 11 health probes timed out before."""
    times = []
    with slow_clients(live.port, 200):
        time.sleep(1.0)
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            times.append(timed_get(live.url + "/health", timeout=3))
            time.sleep(0.1)
    times.sort()
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    assert len(times) > 30
    assert p99 < 1.0, times[-5:]
    # The slow clients are cut off after the request timeout, with a JSON 408.
    answer = send(live.port, b"POST /predict HTTP/1.1\r\nHost: x\r\n", timeout=20)
    _is_json_error(answer, 408)


def test_serve_refuses_a_folder_whose_report_links_to_a_host_file(
    model_copy: Path,
) -> None:
    (model_copy / "report.html").unlink()
    (model_copy / "report.html").symlink_to("/proc/self/environ")
    result = subprocess.run(
        [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model_copy),
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "report.html is a symbolic link" in result.stderr
    assert "PATH=" not in result.stderr + result.stdout
