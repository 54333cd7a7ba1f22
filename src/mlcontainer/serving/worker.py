"""The gunicorn worker: gthread, but a thread only ever sees a request that has arrived whole.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its first bytes
arrive; the thread then blocks until the whole head is read, so a few clients sending
their headers slowly take every thread (200 such clients: 10 of 11 health probes timed
out, with 1 or 4 threads). This worker reads each request (its head, and a body of known
length up to the body limit) in the worker's event loop, without blocking, and submits it
to a thread only once it is complete; a client that has not sent it within
:data:`REQUEST_TIMEOUT` seconds is answered 408 and closed.

While its model loads (:mod:`.loading`), a worker answers only as long as no other worker
has loaded: a server answers at once while it starts, and once one worker is ready new
connections are left to the ready ones instead of being told 503 by one still loading.

Two more things the stock worker does not do:

* On SIGTERM it first accepts every connection already queued on the listening socket and
  answers it (``Connection: close``), then closes its copy of the socket: a connection
  the kernel accepted for us is never reset when the last worker exits.
* gunicorn's own answers to malformed requests (bad request line, header too large,
  broken chunk framing) are JSON in the protocol's error shape, not HTML.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import socket
import struct
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from mlcontainer.serving.errors import bounded, error_body
from mlcontainer.serving.loading import LoadingApp

#: A worker that has loaded its model leaves ``ready-PID`` in the server's metrics folder;
#: the master removes it when that worker exits (``serving.server``).
READY_MARK = "ready-"

#: Seconds a client has, from its first byte, to send a whole request (head and body); a
#: thread reading the rest of a body waits at most this long for each read.
REQUEST_TIMEOUT = 10.0
#: Bytes of a request head read in the event loop at most; a longer head goes to gunicorn's
#: parser, whose limits answer it (414, 431).
MAX_HEAD = 64 * 1024
_READ = 64 * 1024
DEFAULT_BODY_LIMIT = 10 * 1024 * 1024
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.I)
_ANY_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:", re.I)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r\n]*)", re.I)
_EXPECT = re.compile(rb"\r\nexpect[ \t]*:", re.I)
#: A request line starts with a method: a token (RFC 9110 tchar) and a space.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]*")
_LONGEST_METHOD = 32
#: A line feed without its carriage return.
_BARE_LF = re.compile(rb"(?<!\r)\n")
#: Transfer codings gunicorn's parser takes before the final ``chunked``.
_BEFORE_CHUNKED = frozenset({b"gzip", b"deflate", b"compress", b"identity"})
#: The end of a chunked body: the last chunk (size 0), trailer lines, an empty line.
_LAST_CHUNK = re.compile(rb"(?:^|\r\n)0[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n$")
#: How much of a chunked body's end is searched for its last chunk (trailers included).
_TAIL = 8192

#: gunicorn's parse errors and what they are answered with; anything else it raises is a 400.
_CLIENT_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (http_errors.ParseException, 400, "Bad Request", "bad_request"),
)
_APP_ERRORS = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)


class _Conn(TConn):  # type: ignore[misc]
    """A connection, with the bytes of its next request read so far."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending = bytearray()
        self.deadline = 0.0
        self.read_whole = False


def request_complete(data: bytes | bytearray, body_limit: int) -> bool:
    """Whether ``data`` holds a whole request head and the body a thread should not wait for.

    A body of known length must be there in full (unless it is over ``body_limit``: the app
    refuses it unread); a chunked one up to its last chunk. A head with ``Expect`` goes to a
    thread at once (gunicorn answers ``100 Continue`` before the client sends the body).
    So does a head gunicorn's parser refuses whatever body follows (400 or 501 at once, not a
    408 after :data:`REQUEST_TIMEOUT`): ``Transfer-Encoding`` with ``Content-Length``, or
    with codings the parser does not take (it takes ``chunked`` last, after gzip, deflate,
    compress or identity).
    """
    end = data.find(_HEAD_END)
    if end < 0:
        return len(data) > MAX_HEAD
    head = bytes(data[: end + 2])
    body = len(data) - end - len(_HEAD_END)
    if _EXPECT.search(head):
        return True
    codings = [
        c.strip(b" \t").lower()
        for value in _TRANSFER_ENCODING.findall(head)
        for c in value.split(b",")
    ]
    if codings:
        framed = codings[-1] == b"chunked" and set(codings[:-1]) <= _BEFORE_CHUNKED
        if not framed or _ANY_CONTENT_LENGTH.search(head):
            return True  # the parser refuses it: no body is waited for
        tail = bytes(data[max(end + 4, len(data) - _TAIL) :])
        return body > body_limit or bool(_LAST_CHUNK.search(tail))
    length = _CONTENT_LENGTH.search(head)
    if length is None:
        return True
    declared = int(length.group(1))
    return declared > body_limit or body >= declared


def malformed_start(data: bytes | bytearray) -> str | None:
    """Why the start of a request can never become a valid head, or None: it does not open
    with a method and a space (a TLS handshake sent to this plain-HTTP port), or a line of
    its head ends in a bare line feed. gunicorn's parser would wait for a CR LF first."""
    start = bytes(data[: 4 * _LONGEST_METHOD]).lstrip(b"\r\n")  # empty lines may come first
    method = _TOKEN.match(start)
    size = method.end() if method else 0
    if not (
        (size == len(start) and size <= _LONGEST_METHOD)
        or (0 < size <= _LONGEST_METHOD and start[size : size + 1] == b" ")
    ):
        return "it does not start with an HTTP request line (a method, then a space)"
    end = data.find(_HEAD_END)
    if _BARE_LF.search(bytes(data[: MAX_HEAD if end < 0 else end + 2])):
        return "a line of its head ends in a bare line feed; HTTP lines end in CR LF"
    return None


class Worker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker reading requests whole in its event loop (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: deque[_Conn] = deque()
        #: The app's body limit: a body over it is not waited for (the app refuses it).
        self.body_limit: int = getattr(self.app, "body_limit", DEFAULT_BODY_LIMIT)
        #: Where each worker that has loaded its model leaves a mark (None: no such folder).
        self.marks: Path | None = getattr(self.app, "metrics_dir", None)

    # -- while the model loads -------------------------------------------------------------

    def _loading(self) -> bool:
        return isinstance(self.wsgi, LoadingApp) and self.wsgi.app is None

    def _leave_to_others(self) -> bool:
        """Whether new connections should go to the workers that have loaded their model."""
        if not self.alive or self.marks is None or not self._loading():
            return False
        try:
            return any(p.name.startswith(READY_MARK) for p in self.marks.iterdir())
        except OSError:
            return False

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self._accepting and self._leave_to_others():
            self.set_accept_enabled(False)  # gthread's loop enables it again when it may
        super().wait_for_and_dispatch_events(timeout)

    # -- reading requests in the event loop ----------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if self._leave_to_others():  # woken with the ready workers: let them take it
            self.set_accept_enabled(False)
            return
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._start_reading(_Conn(self.cfg, sock, addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: _Conn, client: socket.socket) -> None:
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)

    def _start_reading(self, conn: _Conn) -> None:
        conn.sock.setblocking(False)
        conn.pending = bytearray()
        conn.read_whole = False
        conn.deadline = time.monotonic() + REQUEST_TIMEOUT
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: _Conn, client: socket.socket) -> None:
        try:
            data = client.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data and not conn.pending:  # the client left without a request: no answer
            self._stop_reading(conn)
            self._close(conn)
            return
        conn.pending += data
        why = malformed_start(conn.pending)
        if why is not None:  # answered now: waiting for more would only end in a 408
            self._stop_reading(conn)
            message, path = f"the request is malformed: {why}", _path_of(conn.pending)
            self._answer(conn.sock, 400, "Bad Request", "bad_request", message, path=path)
            self._close(conn)
            return
        # A half-closed request is complete as it is: the thread answers what is there.
        if not data or request_complete(conn.pending, self.body_limit):
            self._stop_reading(conn)
            conn.read_whole = True
            self.enqueue_req(conn)

    def _stop_reading(self, conn: _Conn) -> None:
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)

    def _close(self, conn: _Conn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].deadline <= now:
            conn = self.reading.popleft()
            self.poller.unregister(conn.sock)
            if conn.pending:
                self._answer(conn.sock, 408, "Request Timeout", "request_timeout",
                             f"the request did not arrive within {REQUEST_TIMEOUT:g} seconds",
                             path=_path_of(conn.pending))  # fmt: skip
            self._close(conn)

    def handle(self, conn: _Conn) -> Any:
        if conn.read_whole:
            conn.read_whole = False
            conn.data_ready = True
            conn.sock.setblocking(True)
            conn.init()
            _read_timeout(conn.sock, REQUEST_TIMEOUT, send=float(self.cfg.timeout))
            conn.parser.unreader.unread(bytes(conn.pending))
            conn.pending = bytearray()
        return super().handle(conn)

    def _keepalive_after(self, conn: _Conn, keepalive: bool) -> bool:
        # The app has answered; a body it did not read that then breaks its framing ends
        # the connection, instead of a second (error) answer on it.
        try:
            return bool(super()._keepalive_after(conn, keepalive))
        except (http_errors.ParseException, OSError):
            return False

    # -- shutdown -------------------------------------------------------------------------

    def set_accept_enabled(self, enabled: bool) -> None:
        # gthread asks to enable accepting on each turn of its loop while it is off.
        super().set_accept_enabled(enabled and not self._leave_to_others())
        if enabled or self.alive:
            return
        # Stopping: take every connection the kernel already queued, then let go of the
        # socket, so none is reset when the last process holding it exits. When the whole
        # server stops (the master has closed its copy), new connections are refused first:
        # else one queued between the last accept() and close() would still be reset.
        for listener in self.sockets:
            if not _held_by(self.ppid, listener):
                _refuse_new_connections(listener)
            listener.setblocking(False)
            while True:
                try:
                    sock, addr = listener.accept()
                except OSError:
                    break
                self.nr_conns += 1
                self._start_reading(_Conn(self.cfg, sock, addr, listener.getsockname()))
            listener.close()

    # -- gunicorn's own errors, in JSON --------------------------------------------------

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        path = getattr(req, "path", "") or ""
        if isinstance(exc, _APP_ERRORS) or not isinstance(exc, http_errors.ParseException):
            self.log.exception("Error handling request %s", bounded(str(getattr(req, "uri", ""))))
            self._answer(client, 500, "Internal Server Error", "internal_error",
                         "internal server error", path=path)  # fmt: skip
            return
        status, reason, code = next((s, r, c) for k, s, r, c in _CLIENT_ERRORS
                                    if isinstance(exc, k))  # fmt: skip
        ip = (addr or ("",))[0]
        self.log.warning("Invalid request from ip=%s: %s", ip, bounded(str(exc)))
        self._answer(client, status, reason, code, f"the request is malformed: {exc}", path=path)

    def _answer(
        self, sock: socket.socket, status: int, reason: str, code: str, message: str, *, path: str
    ) -> None:
        body = json.dumps(error_body(path, status, code, bounded(message), [])).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(sock, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("Failed to send error message.")


#: ``SO_ATTACH_FILTER`` (Linux): a classic BPF program run on each packet the socket gets.
_SO_ATTACH_FILTER = 26
#: One instruction, ``BPF_RET | BPF_K`` with 0: keep no byte of any packet (drop it).
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)


def _held_by(pid: int, listener: socket.socket) -> bool:
    """Whether process ``pid`` still holds ``listener`` (True when that cannot be read)."""
    try:
        target = f"socket:[{os.fstat(listener.fileno()).st_ino}]"
        return any(_readlink(fd) == target for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:  # closed while listed
        return ""


def _refuse_new_connections(listener: socket.socket) -> None:
    """Drop every new connection's SYN at ``listener``; those already queued stay.

    The client retries its SYN after about a second and, the socket closed by then, is
    refused: never accepted, so never reset. Only once the master has closed its copy: on a
    reload the new workers share the socket and must keep accepting.
    """
    import ctypes

    program = ctypes.create_string_buffer(_DROP_ALL)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))
    # Not Linux, or not a socket filters apply to: as before, with its tiny window.
    with contextlib.suppress(OSError):
        listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _path_of(data: bytes | bytearray) -> str:
    """The path of a request line, for the shape of an error answered before parsing."""
    line = bytes(data[:2048]).split(b"\r\n", 1)[0].split(b" ")
    return line[1].decode("latin-1").split("?", 1)[0] if len(line) > 1 else ""


def _read_timeout(sock: socket.socket, seconds: float, *, send: float) -> None:
    """Bound each blocking read (and write) of ``sock`` in the kernel: gunicorn resets the
    socket's Python-level timeout, so a thread reading a slow body would wait forever."""
    for option, value in ((socket.SO_RCVTIMEO, seconds), (socket.SO_SNDTIMEO, send)):
        whole = int(value)
        sock.setsockopt(
            socket.SOL_SOCKET, option, struct.pack("ll", whole, int((value - whole) * 1e6))
        )
