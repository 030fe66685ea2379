"""Prometheus instant queries for `class: prometheus` HealthChecks (docs/prometheus.md).

The only network port of the HealthCheck hook. HealthChecks never carry credentials: the
service reads them from one mounted file (`PROMETHEUS_CREDENTIALS_FILE`), mapping an address
prefix to a bearer token or basic auth; the file is re-read when it changes, and an address
without an entry is queried without authentication. Secrets never leave this module: they are
not logged, not put into errors and not copied into a status.

Every failure becomes a `QueryError` whose `reason` is a fixed text (no timings, no bodies that
may change between two calls), so that an outage cannot make the status change on every sync.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
import yaml

#: Query timeout (docs/prometheus.md): for each network phase and for the whole answer; also sent to
#: Prometheus as its own `timeout` parameter, so that it gives up too.
TIMEOUT_S = 3.0
#: A bigger answer is refused: it would be hundreds of thousands of series (aggregate them).
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: How long a good answer is reused for the same address, query and headers.
CACHE_TTL_S = 5.0
CACHE_ENTRIES = 1024
#: After a timeout or a connection failure, the same address is not asked again for this long:
#: every check on a Prometheus that is down would otherwise hold a hook thread for 3 s per sync.
OUTAGE_BACKOFF_S = 10.0
#: Prometheus error texts are copied into a status only for these error types (bounded):
#: they describe the query itself and do not change between two calls.
STABLE_ERROR_TYPES = frozenset({"bad_data"})
ERROR_TEXT_CHARS = 200
QUERY_PATH = "/api/v1/query"
CREDENTIALS_ENV = "PROMETHEUS_CREDENTIALS_FILE"

log = logging.getLogger("hooks.prometheus")


class CredentialsError(ValueError):
    """The credentials file is missing or malformed; the message never contains a secret."""


@dataclass(frozen=True)
class Answer:
    """A successful instant query: one value per series (NaN kept; a scalar is one series)."""

    values: tuple[float, ...]
    result_type: str = "vector"


@dataclass(frozen=True)
class QueryError:
    """A query that gave no usable answer.

    `reason` is fixed for a given failure and may go into a status; `detail` is for the log.
    """

    reason: str
    detail: str = ""
    #: The server did not answer at all (timeout, connection refused): the address is down.
    transport: bool = False


Outcome = Answer | QueryError


# --- credentials ------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Credential:
    """How to authenticate to the addresses under `prefix` (repr hides the secret)."""

    prefix: str
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        kind = "bearer" if self.bearer_token is not None else "basic"
        return f"Credential({self.prefix!r}, {kind})"

    def scrub(self, text: str) -> str:
        basic = None
        if self.password is not None:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        for secret in (self.bearer_token, self.password, basic):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def auth(self) -> httpx2.Auth:
        if self.bearer_token is not None:
            return _Bearer(self.bearer_token)
        return httpx2.BasicAuth(self.username or "", self.password or "")


class _Bearer(httpx2.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _origin(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path without trailing /) of an http(s) URL; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port, parts.path.rstrip("/")


def covers(prefix: str, address: str) -> bool:
    """Whether credentials configured for `prefix` may be sent to `address`.

    Scheme, host and port must be equal and the path must continue at a `/`: a prefix
    `https://prom.example` never covers `https://prom.example.evil.org`.
    """
    want, have = _origin(prefix), _origin(address)
    if want is None or have is None or want[:3] != have[:3]:
        return False
    return have[3] == want[3] or have[3].startswith(want[3] + "/")


def parse_credentials(document: Any) -> tuple[Credential, ...]:
    """Credentials from the file's content: `{<address prefix>: {bearerToken | basicAuth}}`."""
    if document is None:
        return ()
    if not isinstance(document, Mapping):
        raise CredentialsError("must be a mapping of Prometheus address prefixes to credentials")
    found = []
    for prefix, entry in document.items():
        if not isinstance(prefix, str) or _origin(prefix) is None:
            raise CredentialsError(f"key {str(prefix)[:100]!r} is not an http(s) address")
        if "@" in (urlsplit(prefix).netloc or ""):
            raise CredentialsError(f"{prefix!r}: put credentials in the entry, not in the address")
        if not isinstance(entry, Mapping) or len(set(entry) & {"bearerToken", "basicAuth"}) != 1:
            raise CredentialsError(f"{prefix!r}: needs exactly one of bearerToken or basicAuth")
        unknown = set(entry) - {"bearerToken", "basicAuth"}
        if unknown:
            raise CredentialsError(f"{prefix!r}: unknown fields {sorted(map(str, unknown))}")
        if "bearerToken" in entry:
            token = entry["bearerToken"]
            if not isinstance(token, str) or not token.strip() or any(c in token for c in "\r\n"):
                raise CredentialsError(f"{prefix!r}: bearerToken must be a non-empty one-line string")
            found.append(Credential(prefix, bearer_token=token.strip()))
            continue
        basic = entry["basicAuth"]
        if not isinstance(basic, Mapping) or not all(
            isinstance(basic.get(key), str) for key in ("username", "password")
        ):
            raise CredentialsError(f"{prefix!r}: basicAuth needs string username and password")
        found.append(Credential(prefix, username=basic["username"], password=basic["password"]))
    # Longest prefix first: the most specific entry wins.
    return tuple(sorted(found, key=lambda c: len(c.prefix.rstrip("/")), reverse=True))


class CredentialsFile:
    """The mounted credentials file: read at start, re-read when it changes.

    A Secret volume is updated by swapping a symlink, so the file's (inode, size, mtime)
    change. A file that does not exist means no credentials (the Secret is optional: every
    address is then queried without authentication); a file that exists but cannot be read
    or parsed refuses the start, and after a later change keeps the last good credentials.
    """

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._credentials: tuple[Credential, ...] = ()
        self.last_error: str | None = None
        if self.path is not None:
            self._stamp = self._stat()
            if self._stamp is None:
                log.warning(
                    "Prometheus credentials file is absent: queries are sent without authentication",
                    extra={"fields": {"path": str(self.path)}},
                )
            else:
                self._credentials = self._read()  # at start, a bad file is fatal

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> tuple[Credential, ...]:
        assert self.path is not None
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise CredentialsError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            document = yaml.safe_load(text)  # JSON is YAML too
        except yaml.YAMLError:
            raise CredentialsError(f"{self.path}: not valid YAML or JSON") from None
        try:
            return parse_credentials(document)
        except CredentialsError as exc:
            raise CredentialsError(f"{self.path}: {exc}") from None

    def current(self) -> tuple[Credential, ...]:
        if self.path is None:
            return ()
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._credentials

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        self._stamp = stamp
        if stamp is None:
            self._credentials, self.last_error = (), None
            log.warning("Prometheus credentials file removed: queries are sent without authentication")
            return
        try:
            self._credentials = self._read()
            self.last_error = None
            log.info("Prometheus credentials reloaded", extra={"fields": {"entries": len(self._credentials)}})
        except CredentialsError as exc:
            self.last_error = str(exc)  # never contains a secret
            log.error(
                "Prometheus credentials file unusable, keeping the last good one",
                extra={"fields": {"error": self.last_error}},
            )

    def for_address(self, address: str) -> Credential | None:
        return next((c for c in self.current() if covers(c.prefix, address)), None)


# --- answers ----------------------------------------------------------------------------


def _sample(value: Any) -> float:
    """A `[<unix time>, "<value>"]` pair's value; Prometheus writes NaN and ±Inf as strings."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        raise ValueError('a sample is not [time, "value"]')
    return float(value[1])


def parse_answer(code: int, body: bytes) -> Outcome:
    """Read an HTTP answer of `/api/v1/query` (the Prometheus HTTP API format)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if code != 200:
        if isinstance(document, Mapping) and document.get("status") == "error":
            error_type = document.get("errorType")
            error = document.get("error")
            if error_type in STABLE_ERROR_TYPES and isinstance(error, str):
                return QueryError(
                    f"Prometheus rejected the query ({error_type}): {error[:ERROR_TEXT_CHARS]}",
                    f"HTTP {code}",
                )
            return QueryError(f"Prometheus answered HTTP {code} ({str(error_type)[:40]})", str(error)[:500])
        return QueryError(f"Prometheus answered HTTP {code}", body[:500].decode(errors="replace"))
    if not isinstance(document, Mapping):
        return QueryError("malformed answer from Prometheus: not a JSON object", body[:200].decode("latin-1"))
    if document.get("status") != "success":
        return QueryError("malformed answer from Prometheus: status is not success", str(document)[:500])
    data = document.get("data")
    if not isinstance(data, Mapping):
        return QueryError("malformed answer from Prometheus: no data")
    result_type, result = data.get("resultType"), data.get("result")
    try:
        if result_type == "vector" and isinstance(result, list):
            return Answer(tuple(_sample(item.get("value")) for item in result), "vector")
        if result_type == "scalar":
            return Answer((_sample(result),), "scalar")
    except (AttributeError, ValueError) as exc:
        return QueryError("malformed answer from Prometheus: a sample is not a number", str(exc))
    if result_type in ("matrix", "string"):
        return QueryError(
            f"the query returns a {result_type}, not an instant vector or a scalar "
            "(drop the range selector, or wrap it in a function such as rate)"
        )
    return QueryError("malformed answer from Prometheus: unknown resultType", str(result_type)[:100])


# --- the querier ------------------------------------------------------------------------


@dataclass
class _Cache:
    entries: dict[tuple, tuple[float, Outcome]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple, ttl: float) -> Outcome | None:
        with self.lock:
            hit = self.entries.get(key)
        if hit is None or time.monotonic() - hit[0] > ttl:
            return None
        return hit[1]

    def put(self, key: tuple, outcome: Outcome) -> None:
        with self.lock:
            if len(self.entries) >= CACHE_ENTRIES:
                self.entries.clear()  # bounded; the cache is only an optimisation
            self.entries[key] = (time.monotonic(), outcome)


class Querier:
    """Runs instant queries with a 3 s timeout; one `httpx2.Client` (connection pool) per process.

    Good answers are cached for a few seconds per (address, query, headers): the
    sync that follows our own status write asks the same question. Errors are not cached, except
    that an address that did not answer at all is left alone for OUTAGE_BACKOFF_S. Both are
    optimisations: the verdict does not depend on them.
    """

    def __init__(
        self,
        credentials: CredentialsFile | None = None,
        *,
        timeout: float = TIMEOUT_S,
        cache_ttl: float = CACHE_TTL_S,
        outage_backoff: float = OUTAGE_BACKOFF_S,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.credentials = credentials or CredentialsFile(None)
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.outage_backoff = outage_backoff
        self._outages = _Cache()
        self._transport = transport
        self._client: httpx2.Client | None = None
        self._client_lock = threading.Lock()
        self._cache = _Cache()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Querier:
        """From `PROMETHEUS_CREDENTIALS_FILE`; raises CredentialsError when it is set but unusable."""
        path = (environ.get(CREDENTIALS_ENV) or "").strip() or None
        return cls(CredentialsFile(path))

    def _http(self) -> httpx2.Client:
        with self._client_lock:
            if self._client is None:
                # No proxies or .netrc from the environment: nothing but what is configured here
                # may add credentials. No redirects: a 3xx is an error, not a new destination.
                self._client = httpx2.Client(
                    timeout=httpx2.Timeout(self.timeout),
                    trust_env=False,
                    follow_redirects=False,
                    transport=self._transport,
                )
            return self._client

    def query(self, address: str, query: str, headers: Mapping[str, str], at: datetime) -> Outcome:
        """Evaluate `query` at `at` on the Prometheus (or Thanos, Mimir) API under `address`."""
        # Not keyed by `at`: a good answer at most cache_ttl old stands for a fresh one.
        key = (address, query, tuple(sorted(headers.items())))
        if self.cache_ttl > 0:
            cached = self._cache.get(key, self.cache_ttl)
            if cached is not None:
                return cached
        if self.outage_backoff > 0:
            down = self._outages.get((address,), self.outage_backoff)
            if down is not None:
                return down
        outcome = self._query(address, query, headers, at)
        if self.cache_ttl > 0 and isinstance(outcome, Answer):
            self._cache.put(key, outcome)
        if self.outage_backoff > 0 and isinstance(outcome, QueryError) and outcome.transport:
            self._outages.put((address,), outcome)
        return outcome

    def _query(self, address: str, query: str, headers: Mapping[str, str], at: datetime) -> Outcome:
        credential = self.credentials.for_address(address)
        params = {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{self.timeout:g}s"}
        url = address.rstrip("/") + QUERY_PATH
        deadline = time.monotonic() + self.timeout
        try:
            auth = credential.auth() if credential else None
            with self._http().stream("GET", url, params=params, headers=dict(headers), auth=auth) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        return QueryError(
                            f"the answer is larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB "
                            "(too many series: aggregate them, for example with max or sum)"
                        )
                    if time.monotonic() > deadline:
                        raise httpx2.ReadTimeout("answer not complete within the timeout")
                code = response.status_code
        except httpx2.TimeoutException as exc:
            reason = f"Prometheus did not answer within {self.timeout:g}s"
            return QueryError(reason, type(exc).__name__, transport=True)
        except httpx2.TransportError as exc:
            return QueryError("cannot reach Prometheus", f"{type(exc).__name__}: {exc}"[:300], transport=True)
        outcome = parse_answer(code, bytes(body))
        if isinstance(outcome, QueryError) and code in (401, 403):
            hint = "credentials rejected" if credential else "no credentials configured for this address"
            outcome = QueryError(f"Prometheus answered HTTP {code} ({hint})", outcome.detail)
        if isinstance(outcome, QueryError) and credential is not None:
            # An answer that echoes the request (some proxies do) must not carry a secret into a log.
            outcome = QueryError(outcome.reason, credential.scrub(outcome.detail))
        return outcome
