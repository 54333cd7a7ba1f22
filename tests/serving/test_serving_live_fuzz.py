"""A hostile corpus and schemathesis against real `serve` processes, with both runtimes.

Every route, JSON and CSV bodies, odd framings and media types: no answer is a 5xx, every
error is JSON in its protocol's shape, and every 200 prediction answers every row sent (a
partial answer is the worst outcome). Schemathesis then generates requests from the
server's own ``/openapi.json``: schema-valid ones must be accepted (``positive_data_
acceptance``, except V2 inference, whose tensor sizes a JSON schema cannot tie to their
shapes), invalid ones must be refused (``negative_data_rejection``: with a 4xx the document
declares, 413 for a batch over the row limit among them) and never with a 5xx. Bounded:
about 1 000 corpus requests and 1 500 generated ones per runtime.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import Answer, chunked, head, send
from hypothesis import HealthCheck, given, settings
from serving_support import PENGUIN_ROW, LiveServer, free_port, wait_ready

pytestmark = pytest.mark.slow

#: Paths whose success answers are not JSON.
NOT_JSON = {"/", "/metrics", "/confusion_matrix.png", "/report", "/ping"}
PREDICT_ROUTES = ("/predict", "/invocations")


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def server(
    request: pytest.FixtureRequest,
    penguins_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"PORT": str(port), "MLCONTAINER_MAX_ROWS": "200"})
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlcontainer", "serve", "--model", str(penguins_model_dir),
             "--runtime", request.param, "--threads", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    live = LiveServer(process, port, log)
    wait_ready(live)
    yield live
    assert live.stop() == 0
    assert "Traceback" not in live.log(), live.log()[-4000:]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _rows_sent(path: str, body: Any, media: str) -> int | None:
    """How many rows a prediction request holds (None when it cannot tell)."""
    if media.startswith("text/csv"):
        text = body.decode() if isinstance(body, bytes) else str(body)
        lines = [ln for ln in text.split("\n") if ln.strip("\r")]  # the server's line breaks
        return max(0, len(lines) - 1)
    if not isinstance(body, dict):
        return None
    if path == "/predict":
        return len(body.get("instances", []))
    for key in ("dataframe_records", "instances", "inputs"):
        if isinstance(body.get(key), list):
            return len(body[key])
    split = body.get("dataframe_split")
    return len(split["data"]) if isinstance(split, dict) else None


def _check(path: str, answer: Answer, *, rows: int | None = None) -> None:
    """No 5xx, JSON errors (V2: a string), and a 200 prediction for every row."""
    assert answer.status, (path, answer)
    assert answer.status < 500, (path, answer)
    assert not answer.reset, (path, answer)
    if answer.status >= 400 or path not in NOT_JSON:
        assert answer.headers.get("content-type", "").startswith("application/json"), answer
        document = answer.json()
        if answer.status >= 400:
            error = document["error"]
            assert isinstance(error, str) if path.startswith("/v2") else error["message"]
    if answer.status == 200 and rows is not None:
        assert len(answer.json()["predictions"]) == rows, (path, rows, answer.body[:300])


def _corpus(name: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers): odd requests against every route."""
    row = PENGUIN_ROW
    names = list(row)
    csv_ok = (",".join(names) + "\n" + ",".join(str(v) for v in row.values()) + "\n").encode()
    json_bodies: list[Any] = [
        {"instances": [row]},
        {"instances": [list(row.values())]},
        {"instances": [[None]]},
        {"instances": []},
        {"instances": [row] * 201},
        {"instances": [{**row, "island": "\ud800"}]},
        {"instances": [{**row, "island": "x" * 100_000}]},
        {"instances": [{**row, "bill_length_mm": 1e308}]},
        {"instances": [{**row, "bill_length_mm": -(10**400)}]},
        {"instances": [{**row, "bill_length_mm": True}]},
        {"instances": [{**row, "extra": [1, 2]}]},
        {"instances": [{}]},
        {"instances": [[[]]]},
        {"instances": {"a": 1}},
        {"dataframe_split": {"columns": names, "data": [list(row.values())]}},
        {"dataframe_split": {"columns": names, "data": [[1]]}},
        {"dataframe_records": [row], "instances": [row]},
        {"inputs": {n: [v] for n, v in row.items()}},
        {"inputs": {n: [v, v] if n == "year" else [v] for n, v in row.items()}},
        [],
        None,
        "text",
        12,
        {"inputs": [{"name": "island", "shape": [1], "datatype": "BYTES", "data": ["Biscoe"]}]},
        {"inputs": [{"name": "x", "shape": [1, 7], "datatype": "FP64", "data": [1] * 7}]},
        {"inputs": [{"name": "x", "shape": [-1, 7], "datatype": "FP64", "data": []}]},
        {"inputs": [{"name": "x", "shape": [10**12, 7], "datatype": "FP64", "data": [1]}]},
        {
            "inputs": [
                {
                    "name": n,
                    "shape": [1],
                    "datatype": "BYTES" if isinstance(v, str) else "FP64",
                    "data": [v],
                }
                for n, v in row.items()
            ]
        },
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [[[[[[1]]]]]]}]},
    ]
    raw_bodies = [
        b"", b"{", b"[" * 100_000, b'{"instances": [NaN]}', b"\xff\xfe", b"\x00" * 100,
        b'{"instances": [' + b"[]," * 100_000 + b"[]]}", json.dumps(json_bodies[0]).encode() * 2,
    ]  # fmt: skip
    csv_bodies = [
        b"", b"\n\n", ",".join(names).encode() + b"\n", csv_ok, csv_ok.replace(b"Biscoe", b'"Bis'),
        b"\xef\xbb\xbf" + csv_ok, csv_ok.replace(b",", b";"), csv_ok + b"1,2\n",
        csv_ok.replace(b"\n", b"\r\n"), b"a" * 70_000, b'"' * 10_000, csv_ok.replace(b"4", b"\x00"),
        b",".join([b"x"] * 10_000) + b"\n",
    ]  # fmt: skip
    infer = f"/v2/models/{name}/infer"
    requests: list[tuple[str, str, bytes, dict[str, str]]] = []
    for path in ("/predict", "/invocations", infer, "/v2/models/other/infer"):
        for body in json_bodies:
            data = json.dumps(body).encode()
            requests.append(("POST", path, data, {"Content-Type": "application/json"}))
        for data in raw_bodies:
            requests.append(("POST", path, data, {"Content-Type": "application/json"}))
        for media in ("text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data"):
            requests.append(("POST", path, csv_ok, {"Content-Type": media}))
        gz = gzip.compress(json.dumps(json_bodies[0]).encode())
        requests.append(("POST", path, gz, {"Content-Type": "application/json",
                                             "Content-Encoding": "gzip"}))  # fmt: skip
    for data in csv_bodies:
        for media in ("text/csv", "text/csv; charset=utf-8"):
            requests.append(("POST", "/invocations", data, {"Content-Type": media}))
    tensor = {"name": "x", "shape": [1, 7], "datatype": "FP64"}
    binary = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 56}}]}).encode()
    for extra, size in ((b"\x00" * 56, len(binary)), (b"\x00" * 10, len(binary)), (b"", 0),
                        (b"\x00" * 56, 10**9)):  # fmt: skip
        requests.append(("POST", infer, binary + extra, {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(size)}))  # fmt: skip
    gets = ["/", "/health", "/ready", "/model", "/metrics", "/openapi.json", "/report",
            "/confusion_matrix.png", "/ping", "/v2", "/v2/health/live", "/v2/health/ready",
            f"/v2/models/{name}", f"/v2/models/{name}/ready", "/v2/models/x", "/nope", "//predict",
            "/predict/../model", "/%00", "/v2/models/%ff", "/" + "a" * 3000]  # fmt: skip
    for path in gets:
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "BREW"):
            requests.append((method, path, b"", {}))
    return requests


def test_a_hostile_corpus_gets_no_5xx_json_errors_and_whole_answers(server: LiveServer) -> None:
    name = _get(server.url + "/model")["name"]
    corpus = _corpus(name)
    for method, path, body, headers in corpus:
        given = {**headers, "Content-Length": str(len(body))} if body or method == "POST" else {}
        answer = send(server.port, head(method, path, given) + body)
        media = headers.get("Content-Type", "")
        rows = None
        if path in PREDICT_ROUTES and answer.status == 200:
            try:
                rows = _rows_sent(path, body if "csv" in media else json.loads(body), media)
            except ValueError:
                rows = None
        if method == "HEAD" or (method == "OPTIONS" and answer.status < 400):
            assert 0 < answer.status < 500, (method, path, answer)
            continue  # no body to check
        _check(path, answer, rows=rows)
    # The same JSON prediction, chunked and cut short: refused, never answered in part.
    data = json.dumps({"instances": [PENGUIN_ROW] * 50}).encode()
    for path in ("/predict", "/invocations", f"/v2/models/{name}/infer"):
        given = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        framed = head("POST", path, given) + chunked(data, 100)
        _check(path, send(server.port, framed[: len(framed) // 2], half_close=True))
    assert len(corpus) > 300


@pytest.fixture(scope="module")
def api_schema(server: LiveServer) -> Any:
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    # Schemathesis' default refusals leave out 413, which the document declares for a batch
    # over the row limit (a schema-invalid request, as `maxItems` says).
    refusals = {"expected-statuses": ["400", "404", "405", "413", "415", "422"]}
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": refusals}})
    return schemathesis.openapi.from_url(server.url + "/openapi.json", config=config)


def test_schemathesis_finds_no_5xx_and_no_refused_valid_request(
    server: LiveServer, api_schema: Any
) -> None:
    from schemathesis import checks
    from schemathesis.generation import GenerationMode

    started = time.monotonic()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 19
    calls = 0
    _run.calls = 0  # type: ignore[attr-defined]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strict = mode == GenerationMode.POSITIVE and "/infer" not in operation.path
            wanted = [checks.not_a_server_error, checks.content_type_conformance]
            if strict:
                wanted += [checks.response_schema_conformance, checks.positive_data_acceptance]
            if mode == GenerationMode.NEGATIVE:
                wanted.append(checks.negative_data_rejection)
            try:
                _run(operation.as_strategy(generation_mode=mode), server.url, wanted)
            except Exception as exc:
                # An operation without inputs has no negative case to generate.
                if type(exc).__name__ != "Unsatisfiable":
                    raise
            calls += 1
    assert calls == 2 * len(operations)
    assert _run.calls > 400  # type: ignore[attr-defined]
    assert time.monotonic() - started < 120


def _run(strategy: Any, base_url: str, wanted: list[Any]) -> None:
    """Call the server with up to 50 cases of ``strategy`` and run the ``wanted`` checks."""

    @settings(max_examples=50, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=strategy)
    def run(case: Any) -> None:
        _run.calls += 1  # type: ignore[attr-defined]
        response = case.call(base_url=base_url, timeout=30)
        case.validate_response(response, checks=wanted)
        if case.path in PREDICT_ROUTES and response.status_code == 200:
            rows = _rows_sent(case.path, case.body, case.media_type or "")
            if rows is not None:
                assert len(response.json()["predictions"]) == rows

    run()
