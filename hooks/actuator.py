"""Applies planned JSON Patches to the Kubernetes API (docs/targets.md).

The decision engine plans guarded patches (hooks.patchplan); this module only sends them,
one PATCH per object, through lightkube, and turns every result into a PatchOutcome whose
message is deterministic (it ends up in a status that must be a fixed point).

Bounds: every API call answers within CALL_TIMEOUT_S (httpx2 timeouts per network phase,
plus a hard wall-clock bound around the whole call), and one apply() sends no new call
once SYNC_BUDGET_S would be exceeded, so a sync stays within Metacontroller's hook timeout.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import httpx2
from lightkube import Client, ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from hooks.patchplan import RESOURCES, PatchOutcome, PlannedPatch

log = logging.getLogger("hooks.actuator")

APPLY = "apply"
DRY_RUN = "dry-run"
MODES = (APPLY, DRY_RUN)

#: Upper bound of one API call, in seconds (docs/targets.md).
CALL_TIMEOUT_S = 3.0
#: Upper bound of the API calls of one apply(); Metacontroller's default hook timeout is 10 s.
SYNC_BUDGET_S = 7.0
#: Recorded in managedFields of the objects we patch. Flux's drift cleanup does not claim it.
FIELD_MANAGER = "kuberik-rollout"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"
MESSAGE_LIMIT = 200

CONFLICT_MESSAGE = "object changed since it was observed; re-planning"


class Actuator:
    """Sends PlannedPatches (mode `apply`) or only logs them (mode `dry-run`).

    One instance per worker process; safe to share between threads. The lightkube client
    is created on the first apply (not at import, so a pre-forking server never shares
    connections between processes).
    """

    def __init__(
        self,
        mode: str = APPLY,
        *,
        env: Mapping[str, str] | None = None,
        service_account_dir: str = SERVICE_ACCOUNT_DIR,
        call_timeout: float = CALL_TIMEOUT_S,
        sync_budget: float = SYNC_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown actuation mode {mode!r}")
        self.mode = mode
        self.call_timeout = call_timeout
        self.sync_budget = sync_budget
        self._clock = clock
        self._env = dict(os.environ if env is None else env)
        self._service_account_dir = service_account_dir
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._config: SingleConfig | None = None
        self._credentials_error: str | None = None
        #: Where the credentials came from, for logs and /readyz-style diagnostics.
        self.source = ""
        if mode == APPLY:
            self._discover()

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> Actuator:
        """The actuator the service runs with; credential problems surface per patch.

        Raises ValueError for a `ROLLOUT_ACTUATION` other than `apply` or `dry-run`: a typo must
        never silently mean apply (docs/service.md)."""
        raw = (env.get("ROLLOUT_ACTUATION") or "").strip() or APPLY
        if raw not in MODES:
            raise ValueError(f"ROLLOUT_ACTUATION={raw!r}: expected 'apply' or 'dry-run'")
        return cls(raw, env=env, **kwargs)

    @property
    def server(self) -> str | None:
        """The API server URL in use (None without usable credentials or in dry-run)."""
        return self._config.cluster.server if self._config is not None else None

    # --- credentials ---------------------------------------------------------------------

    def _discover(self) -> None:
        """Standard discovery: in-cluster service account, else KUBECONFIG / ~/.kube/config."""
        try:
            config, source, error = discover_config(self._env, self._service_account_dir)
        except Exception as exc:  # discover_config catches what it expects; never fail the app
            config, source, error = None, "", _short(f"{type(exc).__name__}: {_describe(exc)}")
        if error != self._credentials_error and error is not None:
            log.warning("no usable Kubernetes credentials: %s", error)
        elif config is not None and self._config is None:
            log.info("Kubernetes API %s (credentials from %s)", config.cluster.server, source)
        self._config, self.source, self._credentials_error = config, source, error

    def _get_client(self) -> Client | PatchOutcome:
        with self._lock:
            if self._client is not None:
                return self._client
            if self._config is None:
                self._discover()  # credentials may have appeared since the last sync
            if self._config is None:
                return _credentials_outcome(self._credentials_error or "unknown reason")
            try:
                self._client = Client(
                    config=self._config,
                    timeout=httpx2.Timeout(self.call_timeout),
                    field_manager=FIELD_MANAGER,
                )
            except Exception as exc:  # bad CA file, unsupported auth-provider, ...
                reason = _short(f"{self.source}: {_describe(exc)}")
                if reason != self._credentials_error:
                    log.warning("no usable Kubernetes credentials: %s", reason)
                self._credentials_error = reason
                return _credentials_outcome(reason)
            self._credentials_error = None
            self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="actuator")
            return self._client

    def close(self) -> None:
        """Release the connection pool and worker threads (tests; process exit does it too)."""
        with self._lock:
            client, executor = self._client, self._executor
            self._client = self._executor = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()

    # --- applying ------------------------------------------------------------------------

    def apply(self, patches: Sequence[PlannedPatch], deadline: float | None = None) -> list[PatchOutcome]:
        """One outcome per patch, in order. Never raises. `deadline` (clock seconds): the hook
        request's HOOK_DEADLINE; no call is sent that could not finish before it."""
        budget = self._clock() + self.sync_budget
        deadline = budget if deadline is None else min(deadline, budget)
        outcomes: list[PatchOutcome] = []
        for patch in patches:
            try:
                outcome = self._apply_one(patch, deadline)
            except Exception as exc:  # a bug here must not turn the whole sync into a 500
                log.exception("actuation failed unexpectedly")
                outcome = PatchOutcome("error", f"unexpected error: {type(exc).__name__}")
            outcomes.append(outcome)
        return outcomes

    def _apply_one(self, patch: PlannedPatch, deadline: float) -> PatchOutcome:
        refusal = refusal_reason(patch)
        if refusal is not None:
            _log_patch(logging.WARNING, "refused", patch, "error", message=refusal)
            return PatchOutcome("error", refusal)
        if self.mode == DRY_RUN:
            _log_patch(logging.INFO, "planned (dry-run)", patch, "dry-run", ops=patch.ops)
            return PatchOutcome("dry-run", "dry-run")
        client = self._get_client()
        if isinstance(client, PatchOutcome):
            outcome = client
        elif self._clock() + self.call_timeout > deadline:
            outcome = PatchOutcome(
                "error", f"not sent: this sync used up its {self.sync_budget:g}s budget for API calls"
            )
        else:
            outcome = self._send(client, patch)
        level = logging.WARNING if outcome.result == "error" else logging.INFO
        _log_patch(level, "patch", patch, outcome.result, message=outcome.message)
        return outcome

    def _send(self, client: Client, patch: PlannedPatch) -> PatchOutcome:
        executor = self._executor
        if executor is None:  # closed concurrently
            return PatchOutcome("error", "cannot reach the Kubernetes API: client closed")
        try:
            future = executor.submit(_patch_call, client, patch)
        except RuntimeError:  # executor shut down concurrently
            return PatchOutcome("error", "cannot reach the Kubernetes API: client closed")
        try:
            future.result(timeout=self.call_timeout)
        except FutureTimeout:
            future.cancel()
            return PatchOutcome("error", f"timed out after {self.call_timeout:g}s")
        except Exception as exc:
            return outcome_for_exception(exc, self.call_timeout)
        return PatchOutcome("applied", "")


def _patch_call(client: Client, patch: PlannedPatch) -> None:
    client.patch(
        _resource(patch.kind),
        patch.name,
        [dict(op) for op in patch.ops],
        namespace=patch.namespace,
        patch_type=PatchType.JSON,
    )


_resources: dict[str, Any] = {}
_resources_lock = threading.Lock()


def _resource(kind: str) -> Any:
    """lightkube generic resource class for one of patchplan.RESOURCES (created once)."""
    with _resources_lock:
        if kind not in _resources:
            api_version, plural = RESOURCES[kind]
            group, _, version = api_version.partition("/")
            _resources[kind] = create_namespaced_resource(group, version, kind, plural)
        return _resources[kind]


def refusal_reason(patch: PlannedPatch) -> str | None:
    """Defence in depth: only guarded patches of the known kinds, on well-formed names."""
    if patch.kind not in RESOURCES:
        return f"refused: kind {patch.kind!r} is not patched by this controller"
    for label, value in (("namespace", patch.namespace), ("name", patch.name)):
        if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
            return f"refused: invalid object {label} {value!r}"
    ops = patch.ops
    if not ops or not all(isinstance(op, Mapping) for op in ops) or ops[0].get("op") != "test":
        return "refused: the patch does not start with a test op"
    return None


# --- outcomes ------------------------------------------------------------------------------


def outcome_for_exception(exc: BaseException, call_timeout: float = CALL_TIMEOUT_S) -> PatchOutcome:
    """Map a failed call to a deterministic outcome (no timestamps, request ids or addresses of memory)."""
    response = _response_of(exc)
    if response is not None:
        return outcome_for_status(response.status_code, _status_body(response))
    if isinstance(exc, httpx2.TimeoutException):
        return PatchOutcome("error", f"timed out after {call_timeout:g}s")
    if isinstance(exc, httpx2.TransportError):
        return PatchOutcome("error", _short(f"cannot reach the Kubernetes API: {_describe(exc)}"))
    if isinstance(exc, ConfigError):  # e.g. a token file that vanished, a failing exec plugin
        return _credentials_outcome(_describe(exc))
    log.error("unexpected actuation failure", exc_info=exc)
    return PatchOutcome("error", f"unexpected error: {type(exc).__name__}")


def outcome_for_status(code: int, body: dict) -> PatchOutcome:
    """Map an HTTP error answer (with its decoded Status body, possibly empty) to an outcome.

    docs/targets.md: a 409, or a 422 whose cause is our failed `test` (someone else changed the
    object), is a conflict to re-plan; any other 422 (invalid object, admission refusal) is an
    error naming it. Texts are bounded and scrubbed of volatile parts (docs/service.md)."""
    message = _short(str(body.get("message") or "")) or f"HTTP {code}"
    if code == 409:
        return PatchOutcome("conflict", CONFLICT_MESSAGE)
    if code == 422:
        if _failed_test(body):
            return PatchOutcome("conflict", CONFLICT_MESSAGE)
        return PatchOutcome("error", _short(f"invalid: {message}{_causes(body)}"))
    if code == 401:
        return PatchOutcome("error", _short(f"unauthorized: {message}"))
    if code == 403:
        return PatchOutcome("error", _short(f"forbidden: {message}"))
    if code == 404:
        return PatchOutcome("error", _short(f"not found: {message}"))
    if code == 429 or code >= 500:
        return PatchOutcome("error", _short(f"API server error {code}: {message}"))
    return PatchOutcome("error", _short(f"rejected by the API server ({code}): {message}"))


#: How the API server (its JSON Patch library) reports that a patch no longer fits the object.
_TEST_FAILED = re.compile(r"testing value \S* failed|test failed|doc is missing path|does not apply")


def _cause_list(body: Mapping) -> list[dict]:
    details = body.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    return [cause for cause in causes if isinstance(cause, dict)] if isinstance(causes, list) else []


def _failed_test(body: Mapping) -> bool:
    """The 422 reports a failed `test` (or a vanished path), not a field the server refused."""
    causes = _cause_list(body)
    if any(cause.get("field") for cause in causes):
        return False  # schema validation names fields
    texts = [str(cause.get("message") or "") for cause in causes] + [str(body.get("message") or "")]
    return any(_TEST_FAILED.search(text) for text in texts)


def _causes(body: Mapping) -> str:
    """The first field cause, when the message does not already say it."""
    message = str(body.get("message") or "")
    for cause in _cause_list(body):
        if cause.get("message") and str(cause["message"]) not in message:
            text = " ".join(str(cause.get(k)) for k in ("field", "message") if cause.get(k))
            return f" ({text})"
    return ""


def _response_of(exc: BaseException) -> httpx2.Response | None:
    """The HTTP error response behind exc, also when lightkube failed while decoding it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx2.HTTPStatusError):
            return current.response
        current = current.__cause__ or current.__context__
    return None


def _status_body(response: httpx2.Response) -> dict:
    """The decoded Status. A plain-text answer is kept (scrubbed and bounded by _short); an HTML
    error page of a proxy in front of the API server, with its request ids and dates, is not
    copied: only a fixed description of it, so an outage leaves the status a fixed point."""
    try:
        body = response.json()
    except Exception:
        kind = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
        text = response.text.strip() if response.content else ""
        if kind in ("", "text/plain") and text and not text.startswith("<"):
            return {"message": text.splitlines()[0]}
        return {
            "message": f"HTTP {response.status_code} with a non-Status body ({kind or 'no content type'})"
        }
    if not isinstance(body, dict) or body.get("kind") not in (None, "Status"):
        return {"message": f"HTTP {response.status_code} with a non-Status body"}
    return body


def _credentials_outcome(reason: str) -> PatchOutcome:
    return PatchOutcome("error", _short(f"no usable Kubernetes credentials: {reason}"))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


#: Parts of outside texts that change from one answer to the next: ids, times, durations, ports.
_VOLATILE = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)?(ns|µs|us|ms|s)\b"), "<duration>"),
    (re.compile(r"(\d{1,3}(\.\d{1,3}){3}):\d{4,5}->"), r"\1:<port>->"),
)


def _short(text: str) -> str:
    """One line, volatile parts replaced, at most MESSAGE_LIMIT characters (a pure function)."""
    text = " ".join(text.split())
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3].rstrip() + "..."


def _log_patch(level: int, event: str, patch: PlannedPatch, result: str, **fields: Any) -> None:
    """One line per patch; structured fields under `actuation` (never headers or tokens).

    `extra={"fields": ...}` is the convention of hooks.logjson, which renders them as JSON."""
    record = {"kind": patch.kind, "namespace": patch.namespace, "name": patch.name, "result": result}
    record.update(fields)
    log.log(
        level,
        "%s %s %s/%s: %s",
        event,
        patch.kind,
        patch.namespace,
        patch.name,
        result,
        extra={"fields": {"actuation": record}},
    )


# --- configuration discovery ---------------------------------------------------------------


def discover_config(
    env: Mapping[str, str], service_account_dir: str = SERVICE_ACCOUNT_DIR
) -> tuple[SingleConfig | None, str, str | None]:
    """(config, source, error). In-cluster when the service env vars and token are present
    (like client-go); else the first existing file of KUBECONFIG, else ~/.kube/config."""
    in_cluster_problem = ""
    token = Path(service_account_dir, "token")
    if env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT"):
        if token.is_file():
            try:
                config = KubeConfig.from_service_account(service_account=service_account_dir).get()
                return config, "in-cluster service account", None
            except Exception as exc:
                in_cluster_problem = f"in-cluster service account: {_describe(exc)}; "
        else:
            in_cluster_problem = f"no service account token at {token}; "

    listed = [p for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p]
    candidates = listed or [DEFAULT_KUBECONFIG]
    path = next((p for p in candidates if Path(p).expanduser().is_file()), None)
    if path is None:
        shown = os.pathsep.join(candidates)
        if not in_cluster_problem:
            in_cluster_problem = "not running in a cluster; "
        return None, "", _short(f"{in_cluster_problem}no kubeconfig file at {shown}")
    try:
        config = KubeConfig.from_file(path).get()
    except ConfigError as exc:
        return None, "", _short(f"kubeconfig {path}: {_describe(exc)}")
    except KeyError as exc:
        return None, "", _short(f"kubeconfig {path}: missing entry {exc}")
    except Exception as exc:  # YAML or schema errors
        return None, "", _short(f"kubeconfig {path}: {type(exc).__name__}: {_describe(exc)}")
    return config, f"kubeconfig {path}", None
