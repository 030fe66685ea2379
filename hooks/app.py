"""The hook service: one Flask app serving every Metacontroller hook.

`create_app()` builds it (tests pass a fixed clock and their own actuator). The WSGI
callable `app` that gunicorn serves (`hooks.app:app`) is built on first access, so that
importing this module has no side effects; building it fails loudly when a hook handler
cannot be loaded.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, request
from flask.json.provider import JSONProvider
from werkzeug.exceptions import HTTPException

from hooks import auth, logjson, metrics
from hooks.auth import ConfigError
from hooks.limits import ANSWERED, BODY, MAX_BODY_BYTES, RECEIVED_AT, Limits
from hooks.metacontroller import BadRequest

__all__ = ["HOOKS", "MAX_BODY_BYTES", "ConfigError", "HookContext", "create_app"]

#: ROLLOUT_ACTUATION values; unset means apply. Anything else refuses to start.
ACTUATION_MODES = ("apply", "dry-run")
#: The route whose handler fills the Rollout fields of ctx.log (decision, deployed, bake).
ROLLOUT_SYNC = "/rollout/sync"

#: Fields of the request log line that the service writes itself.
RESERVED_LOG_FIELDS = frozenset(
    {"ts", "level", "logger", "msg", "hook", "http_status", "duration_ms", "error", "cause", "traceback"}
)

log = logging.getLogger("hooks")
request_log = logging.getLogger("hooks.request")


@dataclass
class HookContext:
    """What a hook handler gets besides the body: the clock and the side-effect ports."""

    now: datetime
    actuator: Any = None
    #: Announces the facts of persisted statuses (hooks.announce.Announcer), or None.
    announcer: Any = None
    #: Runs the instant queries of `class: prometheus` HealthChecks (promclient.Querier).
    prometheus: Any = None
    #: Fields the handler adds to the request's log line (object, decision, changes).
    log: dict[str, Any] = field(default_factory=dict)
    #: time.monotonic() past which no API call may be sent (arrival + HOOK_DEADLINE).
    deadline: float | None = None


class DeadlineActuator:
    """The actuator as one request sees it: every apply() carries the request's deadline.

    The engine calls `ctx.actuator.apply(patches)`; this passes `deadline=` on to an actuator
    that takes it (hooks.actuator.Actuator checks it before each API call).
    """

    def __init__(self, inner: Any, deadline: float, takes_deadline: bool) -> None:
        self.inner = inner
        self.deadline = deadline
        self._takes_deadline = takes_deadline

    @property
    def mode(self) -> str:
        return str(getattr(self.inner, "mode", "apply"))

    def apply(self, patches: Sequence[Any]) -> Any:
        if self._takes_deadline:
            return self.inner.apply(patches, deadline=self.deadline)
        return self.inner.apply(patches)


def _takes_deadline(actuator: Any) -> bool:
    apply = getattr(actuator, "apply", None)
    if apply is None:
        return False
    try:
        return "deadline" in inspect.signature(apply).parameters
    except (TypeError, ValueError):
        return False


Handler = Callable[[Any, HookContext], dict]

#: route -> "module:function"; every handler takes (body, ctx) and returns the response.
HOOKS: dict[str, str] = {
    "/rollout/customize": "hooks.rollout.customize:customize",
    "/rollout/sync": "hooks.rollout.sync:sync",
    "/healthcheck/customize": "hooks.healthcheck.hook:customize",
    "/healthcheck/sync": "hooks.healthcheck.hook:sync",
    "/rolloutschedule/customize": "hooks.schedule.hook:customize_namespaced",
    "/rolloutschedule/sync": "hooks.schedule.hook:sync_namespaced",
    "/clusterrolloutschedule/customize": "hooks.schedule.hook:customize_cluster",
    "/clusterrolloutschedule/sync": "hooks.schedule.hook:sync_cluster",
}


class DeadlineExceeded(RuntimeError):
    """The answer was ready only after HOOK_DEADLINE: answered 500, never 200."""


class HookLoadError(RuntimeError):
    """A handler named in HOOKS cannot be imported: the service must not start."""


class OrjsonProvider(JSONProvider):
    """orjson for request parsing and response rendering (payloads reach megabytes)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return Response(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), mimetype="application/json")


def _load(path: str, target: str) -> Handler:
    module, _, func = target.partition(":")
    try:
        handler = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise HookLoadError(f"hook {path}: cannot load {target}: {exc}") from exc
    if not callable(handler):
        raise HookLoadError(f"hook {path}: {target} is not callable")
    return handler


def utc_now() -> datetime:
    """The hooks' clock: UTC, whole seconds (status timestamps have second precision)."""
    return datetime.now(UTC).replace(microsecond=0)


def _json(payload: Any, code: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status=code, mimetype="application/json", headers=headers)


def _outcome(code: int) -> str:
    if code < 300:
        return "ok"
    if code == 401:
        return "unauthorized"
    if code == 413:
        return "too_large"
    if code == 503:
        return "overloaded"
    if code >= 500:
        return "error"
    return "bad_request"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def actuation_mode(env: Mapping[str, str]) -> str:
    """ROLLOUT_ACTUATION: `apply` (also when unset) or `dry-run`; anything else is refused."""
    raw = env.get("ROLLOUT_ACTUATION")
    if raw is None or raw.strip() == "":
        return "apply"
    if raw.strip() not in ACTUATION_MODES:
        raise ConfigError(f"ROLLOUT_ACTUATION={raw!r}: expected 'apply' or 'dry-run'")
    return raw.strip()


def _record_rollout(ctx_log: Mapping[str, Any]) -> None:
    """Rollout metrics from a successful /rollout/sync: decision and bakes (bounded labels; the
    deployed version of each Rollout is kube-state-metrics' job, docs/events-and-metrics.md)."""
    bakes = ctx_log.get("bake") or []
    metrics.rollout_synced(ctx_log.get("decision"), bakes if isinstance(bakes, list) else [])


def create_app(
    clock: Callable[[], datetime] = utc_now,
    actuator: Any = None,
    *,
    announcer: Any = None,
    extra_hooks: Mapping[str, Handler] | None = None,
    environ: Mapping[str, str] | None = None,
    querier: Any = None,
) -> Flask:
    """Build the app.

    `actuator=None` creates the real one (one per worker) from the environment, and with it the
    real announcer (Events, FLUX_EVENTS_ADDRESS); a test passing its own actuator gets no
    announcer unless it passes one.
    `extra_hooks` adds routes (path -> handler) next to HOOKS, or replaces one of them, served
    exactly like them (token, limits, metrics, logs); tests use it for handlers that
    misbehave on purpose. `environ` replaces os.environ for the settings read here
    (HOOK_TOKEN*, HOOK_AUTH_DISABLED, HOOK_QUEUE_TIMEOUT, HOOK_DEADLINE, ROLLOUT_ACTUATION)
    and for the actuator. `querier=None` creates the Prometheus querier from
    PROMETHEUS_CREDENTIALS_FILE (docs/prometheus.md).
    Raises ConfigError when the environment is not one to serve with (no token and no
    HOOK_AUTH_DISABLED=true, a missing token file, an unknown ROLLOUT_ACTUATION, ...), and
    HookLoadError when a handler in HOOKS cannot be imported.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    mode = actuation_mode(env)
    limits = Limits.from_env(env)
    token_auth = auth.from_env(env)
    handlers = {path: _load(path, target) for path, target in HOOKS.items()}
    handlers.update(extra_hooks or {})

    app = Flask("hooks")
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = limits.max_body_bytes
    # What the hook worker (hooks.worker) enforces before a request reaches a view.
    app.extensions["hooks"] = {
        "auth": token_auth,
        "limits": limits,
        "hooks": frozenset(handlers),
        # The worker answers some requests itself (401, 413, 503, a deadline's 500).
        "record": record_refusal,
    }
    if actuator is None:
        from hooks.actuator import Actuator

        actuator = Actuator(mode, env=env)  # never raises; missing credentials show per patch
        if announcer is None:
            from hooks.announce import Announcer

            announcer = Announcer.from_env(env, getattr(actuator, "mode", "apply"))
    takes_deadline = _takes_deadline(actuator)
    if querier is None:
        from hooks.healthcheck.promclient import Querier

        querier = Querier.from_env(env)  # raises on an unusable PROMETHEUS_CREDENTIALS_FILE

    def make_view(path: str, handler: Handler) -> Callable[[], Response]:
        hook = path.strip("/")

        def view() -> Response:
            started = time.perf_counter()
            environ_ = request.environ
            received = environ_.get(RECEIVED_AT)
            now_mono = time.monotonic()
            received = received if isinstance(received, float) else now_mono
            deadline = received + limits.deadline
            ctx = HookContext(
                now=clock(),
                actuator=DeadlineActuator(actuator, deadline, takes_deadline),
                announcer=announcer,
                prometheus=querier,
                deadline=deadline,
            )
            body: Any = None
            error: BaseException | None = None
            headers: dict[str, str] = {}
            try:
                if token_auth is not None and not token_auth.check(request.headers.get("Authorization")):
                    code, payload = 401, {"error": "missing or invalid bearer token"}
                    headers["WWW-Authenticate"] = "Bearer"
                elif now_mono - received > limits.queue_timeout:
                    # Waited too long: answered at once, never computed (Metacontroller retries).
                    code, payload = 503, {"error": "overloaded: the request waited too long to be served"}
                    headers["Retry-After"] = "1"
                else:
                    raw = environ_.pop(BODY, None)
                    if not isinstance(raw, bytes):
                        raw = request.get_data(cache=False)
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise BadRequest(f"malformed JSON: {exc}") from exc
                    del raw
                    answer = handler(body, ctx)
                    if not isinstance(answer, dict):
                        raise TypeError(f"hook {path} returned {type(answer).__name__}, not an object")
                    if time.monotonic() > deadline:
                        raise DeadlineExceeded(f"answer ready after the {limits.deadline:g}s deadline")
                    code, payload = 200, answer
                response = Response(
                    orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS),
                    status=code,
                    mimetype="application/json",
                    headers=headers,
                )
            except BadRequest as exc:
                code, error = 400, exc
                response = _json({"error": str(exc)}, code)
            except HTTPException as exc:  # 413 from the body size limit
                code, error = exc.code or 400, exc
                response = _json({"error": exc.description or exc.name}, code)
            except Exception as exc:
                # Never a 200 that could drop status: Metacontroller retries a 500 and writes nothing.
                code, error = 500, exc
                response = _json({"error": f"internal error: {type(exc).__name__}"}, 500)
            elapsed = time.perf_counter() - started
            answered = environ_.get(ANSWERED)
            late = answered is not None and answered.is_set()
            _observe(path, hook, code, elapsed, body, ctx.log, error, answered_already=late)
            return response

        view.__name__ = "hook_" + hook.replace("/", "_")
        return view

    for path, handler in handlers.items():
        app.add_url_rule(path, view_func=make_view(path, handler), methods=["POST"])

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        # Reaching this view means create_app finished: every handler is loaded.
        return _json({"status": "ready", "hooks": sorted(handlers)}, 200)

    @app.get("/metrics")
    def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, status=200, content_type=content_type)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _json({"error": exc.description or exc.name}, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.error("request failed", exc_info=exc, extra={"fields": {"path": request.path}})
        return _json({"error": f"internal error: {type(exc).__name__}"}, 500)

    return app


def record_refusal(path: str, code: int, seconds: float, reason: str) -> None:
    """Metrics and the log line of a hook request the worker answered without the app."""
    hook = path.strip("/")
    try:
        metrics.hook_request(hook, _outcome(code), seconds)
    except Exception:
        log.exception("recording metrics failed")
    fields: dict[str, Any] = {
        "object": None,
        "decision": None,
        "changed": None,
        "hook": hook,
        "http_status": code,
    }
    fields.update({"duration_ms": round(seconds * 1000, 1), "error": reason})
    level = logging.ERROR if code == 500 else logging.WARNING
    request_log.log(level, "hook request", extra={"fields": fields})


def _observe(
    path: str,
    hook: str,
    code: int,
    elapsed: float,
    body: Any,
    ctx_log: dict[str, Any],
    error: BaseException | None,
    *,
    answered_already: bool = False,
) -> None:
    """Metrics and the one structured log line of a hook request. Never raises.

    `answered_already`: the worker answered 500 at the deadline and counted that answer; this
    late computation adds its side effects (patches) and a log line only."""
    try:
        if not answered_already:
            metrics.hook_request(hook, _outcome(code), elapsed)
        patches = ctx_log.get("patches")
        if isinstance(patches, list):
            metrics.patches(patches)  # side effects happened even if the answer failed
        if path == ROLLOUT_SYNC and code == 200 and not answered_already:
            _record_rollout(ctx_log)
    except Exception:
        log.exception("recording metrics failed")
    fields: dict[str, Any] = {"object": None, "decision": None, "changed": None}
    for key, value in ctx_log.items():
        # A handler's field never hides one of ours: it is kept under a prefixed name.
        fields[f"handler_{key}" if key in RESERVED_LOG_FIELDS else key] = value
    fields.update({"hook": hook, "http_status": code, "duration_ms": round(elapsed * 1000, 1)})
    if answered_already:
        fields["dropped"] = "computed after the deadline; the worker had answered 500"
    level = logging.INFO
    if error is not None:
        fields["error"] = _describe(error)
        cause = error.__cause__ or error.__context__
        if cause is not None:
            fields["cause"] = _describe(cause)
        level = logging.ERROR if code >= 500 else logging.WARNING
    elif code >= 400:
        fields["error"] = "unauthorized" if code == 401 else f"HTTP {code}"
        level = logging.WARNING
    exc_info = error if code >= 500 else None
    request_log.log(level, "hook request", exc_info=exc_info, extra={"fields": fields})


_app: Flask | None = None


def __getattr__(name: str) -> Any:
    """`hooks.app:app`: the production app, configured from the environment on first use."""
    global _app
    if name == "app":
        if _app is None:
            logjson.configure(os.environ.get("LOG_LEVEL"))
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
