"""The worker's reading of requests in its event loop: when a request is whole, or never."""

from __future__ import annotations

import pytest

from mlcontainer.serving.worker import malformed_start, request_complete

LIMIT = 1024


def _head(*lines: str) -> bytes:
    return ("\r\n".join(["POST /predict HTTP/1.1", "Host: x", *lines]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "data",
    [
        _head("Transfer-Encoding: chunked", "Content-Length: 5") + b"{}",
        _head("Content-Length: 5", "Transfer-Encoding: chunked") + b"5\r\nabc",
        _head("Transfer-Encoding: br, chunked") + b"5\r\nabc",
        _head("Transfer-Encoding: xchunked") + b"5\r\nabc",
        _head("Transfer-Encoding: chunked, gzip") + b"5\r\nabc",
        _head("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + b"5\r\nabc",
    ],
    ids=["TE then CL", "CL then TE", "unknown coding", "xchunked", "chunked not last", "twice"],
)
def test_framing_the_parser_refuses_is_not_waited_for(data: bytes) -> None:
    """Each waited for a last chunk that never came: a 408 after 10 s, not a 400/501."""
    assert request_complete(data, LIMIT)


@pytest.mark.parametrize(
    "coding", ["chunked", "Chunked", "gzip, chunked", "identity,chunked", "deflate , chunked"]
)
def test_chunked_bodies_gunicorn_reads_are_waited_for_to_their_last_chunk(coding: str) -> None:
    head = _head(f"Transfer-Encoding: {coding}")
    assert not request_complete(head + b"5\r\nabcde\r\n", LIMIT)
    assert request_complete(head + b"5\r\nabcde\r\n0\r\n\r\n", LIMIT)


def test_a_body_of_known_length_is_waited_for() -> None:
    head = _head("Content-Length: 5")
    assert not request_complete(head + b"abc", LIMIT)
    assert request_complete(head + b"abcde", LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("160301020001000100fc0303") + bytes(40),  # a TLS ClientHello
        b"\x00\x01\x02 / HTTP/1.1",
        b"GET /health HTTP/1.1\n",
        b"GET /health HTTP/1.1\r\nHost: x\n",
        b"G" * 40 + b" / HTTP/1.1\r\n",
    ],
    ids=["TLS hello", "binary", "bare LF request line", "bare LF header", "40-byte method"],
)
def test_a_start_that_can_never_be_a_request_is_told_why(data: bytes) -> None:
    why = malformed_start(data)
    assert why is not None
    assert ("request line" in why) or ("bare line feed" in why)


@pytest.mark.parametrize(
    "data",
    [b"G", b"GET", b"GET ", b"\r\nGET / HTTP/1.1\r\n", b"POST /predict HTTP/1.1\r\nHost: x\r\n"],
)
def test_the_start_of_a_valid_request_is_left_to_arrive(data: bytes) -> None:
    assert malformed_start(data) is None
