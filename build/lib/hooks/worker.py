"""The gunicorn worker class of the hook service: an asyncio front and one compute thread.

`worker_class = "hooks.worker.HookWorker"` (gunicorn.conf.py) serves the WSGI app
`hooks.app:app` like any gunicorn worker, but built for what docs/service.md promises under load
(docs/performance.md has the measurements behind it):

- Connections are read by an asyncio event loop (HTTP/1.1 parsed by h11): a slow or idle
  connection costs a socket, never a hook worker. Headers must arrive within
  HEADER_TIMEOUT_S, the next request on a kept-alive connection within `keepalive`.
- A hook request is handed over only once fully read, to the process's single compute
  thread (CPU-bound work: more threads only add memory, see docs/performance.md), through a
  FIFO queue. Its times count from arrival (headers read): still queued after
  HOOK_QUEUE_TIMEOUT, it is answered 503 at once and never computed; not answered by
  HOOK_DEADLINE, the loop answers 500 and drops the late result. The deadline also goes to
  the app (WSGI environ), so the actuator sends no API call past it.
- The bearer token and the body limit are checked before the body is read (401 / 413, and
  the connection is closed), so an unauthenticated caller never makes the worker buffer.
  Bodies being read or waiting are bounded in bytes per process (503 beyond).
- Probes and /metrics are answered by the loop itself, never queued behind hooks.
- The cyclic garbage collector is off while requests are served (parsed JSON has no
  cycles; a full collection over a 13 MiB request cost ~40% of a sync) and runs when the
  compute thread is idle, or every GC_EVERY requests under sustained load.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import h11
import orjson
from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

from hooks.limits import ANSWERED, BODY, MAX_BODY_BYTES, RECEIVED_AT, Limits

#: The request line and headers must be complete this long after the first byte.
HEADER_TIMEOUT_S = 10.0
#: Largest request head (line + headers) accepted.
MAX_HEAD_BYTES = 64 * 1024
#: Bytes of hook bodies a process holds at once (being read, queued, computed): one request at
#: the body limit computing and one waiting. docs/service.md sizes the pod with it.
BUFFER_BYTES = 2 * MAX_BODY_BYTES
#: A response must be taken by the client within this long.
WRITE_TIMEOUT_S = 10.0
#: Without an idle moment, the collector still runs every this many requests.
GC_EVERY = 16
#: A computation still running this long after its deadline means the thread is stuck: the
#: worker stops its heartbeat, so gunicorn replaces it after `timeout`.
STUCK_AFTER_S = 20.0
READ_CHUNK = 256 * 1024
#: asyncio pauses reading a connection whose buffer holds twice this (per connection memory).
STREAM_BUFFER_BYTES = 512 * 1024

Headers = list[tuple[str, str]]


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes
    close: bool = False


@dataclass
class Job:
    environ: dict[str, Any]
    path: str
    received: float
    size: int
    future: asyncio.Future[Answer]
    started: float | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


def json_answer(status: int, payload: dict[str, Any], *, close: bool = False, **extra: str) -> Answer:
    headers = [("Content-Type", "application/json"), *((k.replace("_", "-"), v) for k, v in extra.items())]
    return Answer(status, headers, orjson.dumps(payload), close)


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Answer:
    """Run the WSGI app to completion and collect its answer."""
    started: list[Any] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, headers]
        return lambda data: None  # the write() callable; Flask never uses it

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return Answer(int(status.split(" ", 1)[0]), list(headers), body)


class HookWorker(Worker):
    """gunicorn worker: asyncio front (connections, probes, admission) + one compute thread."""

    def init_process(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.queue: deque[Job] = deque()
        self.computing: Job | None = None
        self.buffered = 0
        self.served = 0
        self.connections: set[asyncio.Task[None]] = set()
        #: Requests between their headers and the end of their answer (shutdown waits for them).
        self.answering = 0
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        service = getattr(self.wsgi, "extensions", {}).get("hooks", {})
        self.auth = service.get("auth")
        self.limits: Limits = service.get("limits") or Limits()
        self.hook_paths: frozenset[str] = service.get("hooks") or frozenset()
        self.record: Callable[[str, int, float, str], None] | None = service.get("record")
        # Everything loaded so far lives as long as the process: keep it out of collections.
        gc.collect()
        gc.freeze()
        gc.disable()

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        servers = [
            await asyncio.start_server(self._connection, sock=listener.sock, limit=STREAM_BUFFER_BYTES)
            for listener in self.sockets
        ]
        compute = threading.Thread(target=self._compute_loop, name="hook-compute", daemon=True)
        self._jobs: deque[Job] = deque()
        self._jobs_cv = threading.Condition()
        compute.start()
        while self.alive:
            if not self._stuck():
                self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            await asyncio.sleep(1.0)
        for server in servers:
            server.close()
        stop_at = time.monotonic() + self.cfg.graceful_timeout
        while (self.answering or self.computing) and time.monotonic() < stop_at:
            self.notify()
            await asyncio.sleep(0.1)
        for task in list(self.connections):
            task.cancel()

    def _stuck(self) -> bool:
        job = self.computing
        return (
            job is not None
            and job.started is not None
            and time.monotonic() > job.received + self.limits.deadline + STUCK_AFTER_S
        )

    # --- connections -------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        peer = writer.get_extra_info("peername") or ("", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        if len(self.connections) > self.cfg.worker_connections:
            self.connections.discard(task)
            writer.close()
            return
        first = True
        try:
            while self.alive:
                request = await self._read_head(
                    conn, reader, HEADER_TIMEOUT_S if first else self.cfg.keepalive
                )
                first = False
                if request is None:
                    return
                received = time.monotonic()
                self.answering += 1
                try:
                    answer = await self._answer(conn, reader, writer, request, received, peer, local)
                    if not await self._write(conn, writer, answer):
                        return
                finally:
                    self.answering -= 1
                if answer.close or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:  # the body was read past h11 (see _read_body): a fresh parser for the next request
                    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self.connections.discard(task)
            writer.close()

    async def _receive(self, conn: h11.Connection, reader: asyncio.StreamReader, timeout: float) -> bool:
        """Feed the next bytes to h11; False when the client is gone or too slow."""
        if timeout <= 0:
            return False
        try:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
        except (TimeoutError, ConnectionError):
            return False
        conn.receive_data(data)
        return True

    async def _read_head(
        self, conn: h11.Connection, reader: asyncio.StreamReader, idle: float
    ) -> h11.Request | None:
        """The next request's head: its first byte within `idle`, all of it HEADER_TIMEOUT_S later."""
        first_byte_by = time.monotonic() + idle
        head_by: float | None = None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if isinstance(event, h11.Request):
                return event
            if event is not h11.NEED_DATA:
                return None  # ConnectionClosed, or a pause after an unread body
            if head_by is None and conn.trailing_data[0]:
                head_by = time.monotonic() + HEADER_TIMEOUT_S
            limit = head_by if head_by is not None else first_byte_by
            if not await self._receive(conn, reader, limit - time.monotonic()):
                return None
            if head_by is None:
                head_by = time.monotonic() + HEADER_TIMEOUT_S

    async def _read_body(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        until: float,
        keep: bool,
        limit: int,
        length: int | None,
    ) -> bytes | int | None:
        """The body (bytes), None when the client is gone or too slow, or the size read when
        it exceeds `limit` (or `keep` is False: read and thrown away).

        A body with a Content-Length is read in one piece past h11 (parsing 13 MiB through h11
        costs ~50 ms of the loop's time); chunked bodies go through h11."""
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        buffered = conn.trailing_data[0]
        if length is not None and len(buffered) <= length:
            if length > limit:
                return length
            return await self._read_exactly(reader, bytes(buffered), length, until, keep)
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return size
                if keep:
                    chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks) if keep else size
            elif event is h11.NEED_DATA:
                if not await self._receive(conn, reader, until - time.monotonic()):
                    return None
            else:
                return None

    @staticmethod
    async def _read_exactly(
        reader: asyncio.StreamReader, head: bytes, length: int, until: float, keep: bool
    ) -> bytes | int | None:
        """`length` bytes (the first ones already in `head`) in chunks: the stream's own buffer
        stays small, so a kept-alive connection does not hold a body-sized buffer."""
        chunks = [head] if head and keep else []
        remaining = length - len(head)
        while remaining > 0:
            try:
                data = await asyncio.wait_for(
                    reader.read(min(remaining, READ_CHUNK)), until - time.monotonic()
                )
            except (TimeoutError, ConnectionError):
                return None
            if not data:
                return None
            remaining -= len(data)
            if keep:
                chunks.append(data)
        return b"".join(chunks) if keep else length

    async def _answer(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        received: float,
        peer: Any,
        local: Any,
    ) -> Answer:
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        path = unquote(path, encoding="latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        method = request.method.decode("ascii", "replace")
        environ = self._environ(method, path, query, headers, peer, local)
        limit = self.limits.max_body_bytes
        length = _content_length(headers)
        body_by = received + self.limits.queue_timeout
        if method != "POST" or path not in self.hook_paths:
            # Probes, /metrics, 404s and 405s: answered here, never queued behind hooks.
            body = await self._read_body(conn, reader, writer, body_by, True, limit, length)
            if not isinstance(body, bytes):
                return json_answer(
                    413 if isinstance(body, int) else 408, {"error": "bad request body"}, close=True
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            return call_wsgi(self.wsgi, environ)
        if self.auth is not None and not self.auth.check(environ.get("HTTP_AUTHORIZATION")):
            self._record(path, 401, received, "unauthorized")
            return json_answer(
                401, {"error": "missing or invalid bearer token"}, close=True, WWW_Authenticate="Bearer"
            )
        if length is not None and length > limit:
            self._record(path, 413, received, "body over the size limit")
            return json_answer(413, {"error": f"request body over {limit} bytes"}, close=True)
        reserve = length if length is not None else limit
        if self.buffered + reserve > BUFFER_BYTES:
            drained = await self._read_body(conn, reader, writer, body_by, False, limit, length)
            self._record(path, 503, received, "overloaded: request buffer full")
            return self._overloaded(close=not isinstance(drained, int) or drained > limit)
        self.buffered += reserve
        try:
            body = await self._read_body(conn, reader, writer, body_by, True, limit, length)
            if isinstance(body, int):
                self._record(path, 413, received, "body over the size limit")
                return json_answer(413, {"error": f"request body over {limit} bytes"}, close=True)
            if body is None:
                return json_answer(408, {"error": "request body not received in time"}, close=True)
            environ["wsgi.input"] = io.BytesIO(b"")
            environ["CONTENT_LENGTH"] = str(len(body))
            environ[BODY] = body
            environ[RECEIVED_AT] = received
            environ[ANSWERED] = threading.Event()
            job = Job(environ, path, received, reserve, self.loop.create_future())
            del body
            return await self._submit(job)
        finally:
            self.buffered -= reserve

    def _overloaded(self, close: bool = False) -> Answer:
        return json_answer(
            503,
            {"error": "overloaded: the request waited too long to be served"},
            close=close,
            Retry_After="1",
        )

    def _record(self, path: str, code: int, received: float, reason: str) -> None:
        if self.record is not None:
            self.record(path, code, time.monotonic() - received, reason)

    async def _write(self, conn: h11.Connection, writer: asyncio.StreamWriter, answer: Answer) -> bool:
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "connection")]
        headers.append(("Content-Length", str(len(answer.body))))
        if answer.close or not self.alive:
            headers.append(("Connection", "close"))
            answer.close = True
        try:
            data = conn.send(h11.Response(status_code=answer.status, headers=headers))
            data = (data or b"") + (conn.send(h11.Data(data=answer.body)) or b"")
            data += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return False
        writer.write(data)
        try:
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            return False
        return True

    def _environ(
        self, method: str, path: str, query: str, headers: Headers, peer: Any, local: Any
    ) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": str(local[0]),
            "SERVER_PORT": str(local[1]),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": str(peer[0]),
            "REMOTE_PORT": str(peer[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                http_key = "HTTP_" + key
                environ[http_key] = f"{environ[http_key]},{value}" if http_key in environ else value
        return environ

    # --- admission and the compute thread ---------------------------------------------------

    async def _submit(self, job: Job) -> Answer:
        limits = self.limits
        now = time.monotonic()
        if now - job.received > limits.queue_timeout:
            self._record(job.path, 503, job.received, "overloaded: waited too long")
            return self._overloaded()
        job.timers.append(self.loop.call_later(job.received + limits.queue_timeout - now, self._expire, job))
        job.timers.append(
            self.loop.call_later(job.received + limits.deadline - now, self._past_deadline, job)
        )
        self.queue.append(job)
        self._dispatch()
        try:
            return await job.future
        finally:
            for timer in job.timers:
                timer.cancel()

    def _expire(self, job: Job) -> None:
        """Still queued after HOOK_QUEUE_TIMEOUT: 503 at once, never computed."""
        if job.started is None and job in self.queue:
            self.queue.remove(job)
            self._record(job.path, 503, job.received, "overloaded: waited too long")
            if not job.future.done():
                job.future.set_result(self._overloaded())

    def _past_deadline(self, job: Job) -> None:
        """Not answered by HOOK_DEADLINE: 500 now; the late result is dropped."""
        if not job.future.done():
            answered = job.environ.get(ANSWERED)
            if answered is not None:
                answered.set()
            reason = f"no answer within the {self.limits.deadline:g}s deadline"
            self._record(job.path, 500, job.received, reason)
            job.future.set_result(json_answer(500, {"error": "internal error: deadline exceeded"}))

    def _dispatch(self) -> None:
        if self.computing is not None:
            return
        while self.queue:
            job = self.queue.popleft()
            if job.future.done():
                continue
            if time.monotonic() - job.received > self.limits.queue_timeout:
                self._expire_now(job)
                continue
            job.started = time.monotonic()
            self.computing = job
            with self._jobs_cv:
                self._jobs.append(job)
                self._jobs_cv.notify()
            return

    def _expire_now(self, job: Job) -> None:
        self._record(job.path, 503, job.received, "overloaded: waited too long")
        job.future.set_result(self._overloaded())

    def _computed(self, job: Job, answer: Answer) -> None:
        self.computing = None
        if not job.future.done():
            job.future.set_result(answer)
        self._dispatch()

    def _compute_loop(self) -> None:
        while True:
            with self._jobs_cv:
                while not self._jobs:
                    self._jobs_cv.wait()
                job = self._jobs.popleft()
            try:
                answer = call_wsgi(self.wsgi, job.environ)
            except Exception as exc:  # the app answers its own errors; this is a last resort
                self.log.exception("hook request failed outside the app")
                answer = json_answer(500, {"error": f"internal error: {type(exc).__name__}"})
            job.environ.clear()  # drop the body and the parsed request now, not when the loop runs
            self.served += 1
            try:
                self.loop.call_soon_threadsafe(self._computed, job, answer)
            except RuntimeError:
                return  # the loop is closed: the worker is exiting
            del job, answer
            if not self.queue or self.served % GC_EVERY == 0:
                gc.collect()


def _content_length(headers: Headers) -> int | None:
    """The Content-Length framing the body (h11 validated it), None for a chunked body."""
    if any(name.lower() == "transfer-encoding" for name, _ in headers):
        return None
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
