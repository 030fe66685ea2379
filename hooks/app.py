"""The hook service: one Flask app serving every Metacontroller hook.

`create_app()` builds it (tests pass a fixed clock and their own actuator). The WSGI
callable `app` that gunicorn serves (`hooks.app:app`) is built on first access, so that
importing this module has no side effects; building it fails loudly when a hook handler
cannot be loaded.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, request
from flask.json.provider import JSONProvider
from werkzeug.exceptions import HTTPException

from hooks import logjson, metrics
from hooks.metacontroller import BadRequest

MAX_BODY_BYTES = 32 * 1024 * 1024
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
        return self._app.response_class(
            orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), mimetype="application/json"
        )


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
    if code >= 500:
        return "error"
    return "bad_request"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _bearer_ok(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` (scheme case-insensitive), compared in constant time."""
    scheme, _, credential = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credential.strip().encode(), token.encode())


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
    misbehave on purpose. `environ` replaces os.environ
    for the settings read here (HOOK_TOKEN) and for the actuator. `querier=None` creates the
    Prometheus querier from PROMETHEUS_CREDENTIALS_FILE (docs/prometheus.md).
    Raises HookLoadError when a handler in HOOKS cannot be imported.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    token = (env.get("HOOK_TOKEN") or "").strip() or None
    handlers = {path: _load(path, target) for path, target in HOOKS.items()}
    handlers.update(extra_hooks or {})

    app = Flask("hooks")
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if actuator is None:
        from hooks.actuator import Actuator

        actuator = Actuator.from_env(env)  # never raises; missing credentials show per patch
        if announcer is None:
            from hooks.announce import Announcer

            announcer = Announcer.from_env(env, getattr(actuator, "mode", "apply"))
    if querier is None:
        from hooks.healthcheck.promclient import Querier

        querier = Querier.from_env(env)  # raises on an unusable PROMETHEUS_CREDENTIALS_FILE

    def make_view(path: str, handler: Handler) -> Callable[[], Response]:
        hook = path.strip("/")

        def view() -> Response:
            started = time.perf_counter()
            ctx = HookContext(now=clock(), actuator=actuator, announcer=announcer, prometheus=querier)
            body: Any = None
            error: BaseException | None = None
            headers: dict[str, str] = {}
            try:
                if token is not None and not _bearer_ok(request.headers.get("Authorization"), token):
                    code, payload = 401, {"error": "missing or invalid bearer token"}
                    headers["WWW-Authenticate"] = "Bearer"
                else:
                    raw = request.get_data(cache=False)
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise BadRequest(f"malformed JSON: {exc}") from exc
                    answer = handler(body, ctx)
                    if not isinstance(answer, dict):
                        raise TypeError(f"hook {path} returned {type(answer).__name__}, not an object")
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
            _observe(path, hook, code, elapsed, body, ctx.log, error)
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


def _observe(
    path: str,
    hook: str,
    code: int,
    elapsed: float,
    body: Any,
    ctx_log: dict[str, Any],
    error: BaseException | None,
) -> None:
    """Metrics and the one structured log line of a hook request. Never raises."""
    try:
        metrics.hook_request(hook, _outcome(code), elapsed)
        patches = ctx_log.get("patches")
        if isinstance(patches, list):
            metrics.patches(patches)  # side effects happened even if the answer failed
        if path == ROLLOUT_SYNC and code == 200:
            _record_rollout(ctx_log)
    except Exception:
        log.exception("recording metrics failed")
    fields: dict[str, Any] = {"object": None, "decision": None, "changed": None}
    for key, value in ctx_log.items():
        # A handler's field never hides one of ours: it is kept under a prefixed name.
        fields[f"handler_{key}" if key in RESERVED_LOG_FIELDS else key] = value
    fields.update({"hook": hook, "http_status": code, "duration_ms": round(elapsed * 1000, 1)})
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
