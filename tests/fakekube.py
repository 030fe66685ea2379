"""An in-process fake Kubernetes API server for actuator tests.

Holds objects in memory keyed by REST path, answers GET and JSON Patch (applied with the
`jsonpatch` library, 422 on a failed `test` or a missing path, like the real API server),
records every request, and injects faults (status codes, delays, dropped connections).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonpatch
import yaml

from hooks.patchplan import RESOURCES

JSON_PATCH = "application/json-patch+json"

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}

_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)$"
)


#: Collections the fake serves `create` for (POST): events.k8s.io/v1 Events only.
_COLLECTION = re.compile(
    r"^/apis/(?P<group>events\.k8s\.io)/(?P<version>v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>events)$"
)
EVENTS_PATH = "/apis/events.k8s.io/v1/namespaces/{namespace}/events"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
#: metav1.MicroTime's wire format (RFC 3339 with exactly six fraction digits).
_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


FAKE_TOKEN = "fake-token-for-tests"


def write_kubeconfig(path: Path, server: str, token: str = FAKE_TOKEN) -> Path:
    """A kubeconfig with one cluster and one token user, as the actuator's discovery reads it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "hooks", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hooks"}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path


#: Kinds the fake also serves for reading (the CLI lists them): kind -> (apiVersion, plural, namespaced).
READ_KINDS: dict[str, tuple[str, str, bool]] = {
    **{kind: (api, plural, True) for kind, (api, plural) in RESOURCES.items()},
    "Rollout": ("kuberik.com/v1alpha1", "rollouts", True),  # read back: nothing ever writes it
    "RolloutGate": ("kuberik.com/v1alpha1", "rolloutgates", True),
    "HealthCheck": ("kuberik.com/v1alpha1", "healthchecks", True),
    "RolloutSchedule": ("kuberik.com/v1alpha1", "rolloutschedules", True),
    "ClusterRolloutSchedule": ("kuberik.com/v1alpha1", "clusterrolloutschedules", False),
    "ImagePolicy": ("image.toolkit.fluxcd.io/v1", "imagepolicies", True),
    "Namespace": ("v1", "namespaces", False),
}


def path_for(kind: str, namespace: str | None, name: str) -> str:
    """REST path of an object of one of the kinds the fake serves."""
    api_version, plural, namespaced = READ_KINDS[kind]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if not namespaced:
        return f"{prefix}/{plural}/{name}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


@dataclass(frozen=True)
class Recorded:
    """One request as the fake server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any  # decoded JSON, or the raw text when it is not JSON, or None
    authorization: str | None


@dataclass
class Fault:
    path: str | None  # None: every path
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    message: str | None = None
    details: dict | None = None
    remaining: int | None = None  # None: forever
    raw: bytes | None = None  # a non-Status answer (e.g. a proxy's HTML 502 page)


@dataclass
class FakeKube:
    """The fake API server. `token`, when set, is required as `Authorization: Bearer <token>`."""

    token: str | None = None
    objects: dict[str, dict] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeKube:
        fake = self

        class Handler(_Handler):
            kube = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fakekube", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test helpers --------------------------------------------------------------------

    def put(self, obj: dict) -> str:
        """Store (a copy of) an object; returns its REST path."""
        meta = obj.setdefault("metadata", {})
        path = path_for(obj["kind"], meta.get("namespace"), meta["name"])
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("resourceVersion", "1")
        stored["metadata"].setdefault("generation", 1)
        with self._lock:
            self.objects[path] = stored
        return path

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        with self._lock:
            obj = self.objects.get(path_for(kind, namespace, name))
            return copy.deepcopy(obj)

    def fail(
        self,
        status: int | None = None,
        *,
        path: str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        message: str | None = None,
        details: dict | None = None,
        times: int | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Inject a fault for one REST path (or all): answer `status`, wait `delay` seconds
        first, or `drop` the connection without answering; for `times` requests (or all).
        `raw` answers that body as text/html instead of a Status (what a proxy in front sends)."""
        with self._lock:
            self.faults.append(Fault(path, status, delay, drop, message, details, times, raw))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def patches(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PATCH"]

    def events(self, namespace: str | None = None) -> list[dict]:
        """The events.k8s.io/v1 Events created so far (in creation order)."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for path, obj in self.objects.items()
                if obj.get("kind") == "Event"
                and (namespace is None or path.startswith(EVENTS_PATH.format(namespace=namespace) + "/"))
            ]

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # --- request handling (called from the server's threads) ----------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path in (None, path) and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API server

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        kube = self.kube
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        kube._record(
            Recorded(
                method=method,
                path=url.path,
                query=parse_qs(url.query),
                content_type=self.headers.get("Content-Type"),
                body=body,
                authorization=self.headers.get("Authorization"),
            )
        )

        fault = kube._take_fault(url.path)
        if fault is not None:
            if fault.delay and kube._stopping.wait(fault.delay):
                return
            if fault.drop:
                self.close_connection = True
                return
            if fault.status is not None and fault.raw is not None:
                self._raw(fault.status, fault.raw)
                return
            if fault.status is not None:
                self._status(
                    fault.status, fault.message or _default_message(fault.status, url.path), fault.details
                )
                return

        if kube.token is not None and self.headers.get("Authorization") != f"Bearer {kube.token}":
            self._status(401, "Unauthorized")
            return
        collection = _COLLECTION.match(url.path)
        if collection is not None and method == "POST":
            self._create_event(collection["ns"], body)
            return
        if method == "GET" and self._read_other(url.path, parse_qs(url.query)):
            return
        match = _PATH.match(url.path)
        if match is None or method not in ("GET", "PATCH"):
            self._status(405, f"{method} {url.path} is not supported by the fake API server")
            return
        with kube._lock:
            current = copy.deepcopy(kube.objects.get(url.path))
        if current is None:
            self._status(404, f'{match["plural"]}.{match["group"]} "{match["name"]}" not found')
            return
        if method == "GET":
            self._json(200, current)
            return

        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != JSON_PATCH:
            self._status(
                415,
                f"the body of the request was in an unknown format - accepted media types: {JSON_PATCH}",
            )
            return
        if not isinstance(body, list):
            self._status(400, "json: cannot unmarshal the patch into a list of operations")
            return
        try:
            patched = jsonpatch.JsonPatch(body).apply(current)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            # What the API server answers when a JSON Patch cannot be applied; its messages are
            # those of the JSON Patch library it uses (evanphx/json-patch).
            details = {
                "causes": [{"reason": "UnexpectedServerResponse", "message": _patch_error(current, body)}]
            }
            self._status(422, "the server rejected our request due to an error in our request", details)
            return
        meta = patched.setdefault("metadata", {})
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        if patched.get("spec") != current.get("spec"):
            meta["generation"] = int(meta.get("generation") or 0) + 1
        with kube._lock:
            # Apply only on top of what was read (no lost update between threads).
            if kube.objects.get(url.path) != current:
                conflict = True
            else:
                kube.objects[url.path] = patched
                conflict = False
        if conflict:
            self._status(409, "Operation cannot be fulfilled: the object has been modified")
            return
        self._json(200, patched)

    def _read_other(self, path: str, query: dict[str, list[str]]) -> bool:
        """GET of a collection (namespaced or across namespaces, `labelSelector` applied the way
        the API server applies it) or of a cluster-scoped object; False for other paths."""
        kube = self.kube
        for kind, (api_version, plural, namespaced) in READ_KINDS.items():
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            collection = re.fullmatch(
                re.escape(prefix) + r"(?:/namespaces/(?P<ns>[^/]+))?/" + re.escape(plural), path
            )
            if collection is not None and (namespaced or collection["ns"] is None):
                selector = (query.get("labelSelector") or [""])[0]
                try:
                    requirements = parse_label_selector(selector)
                except ValueError as exc:
                    self._status(400, f"unable to parse requirement: {exc}")
                    return True
                with kube._lock:
                    items = [copy.deepcopy(o) for o in kube.objects.values() if o.get("kind") == kind]
                ns = collection["ns"]
                items = [
                    o
                    for o in items
                    if (ns is None or o["metadata"].get("namespace") == ns)
                    and labels_match(requirements, o["metadata"].get("labels") or {})
                ]
                items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
                if api_version == "v1":  # built-in lists carry no kind/apiVersion per item
                    for item in items:
                        item.pop("kind", None)
                        item.pop("apiVersion", None)
                self._json(
                    200,
                    {
                        "apiVersion": api_version,
                        "kind": f"{kind}List",
                        "metadata": {"resourceVersion": str(len(kube.requests))},
                        "items": items,
                    },
                )
                return True
            if not namespaced:
                single = re.fullmatch(re.escape(prefix) + "/" + re.escape(plural) + r"/(?P<name>[^/]+)", path)
                if single is not None:
                    with kube._lock:
                        obj = copy.deepcopy(kube.objects.get(path))
                    if obj is None:
                        self._status(404, f'{plural} "{single["name"]}" not found')
                    else:
                        self._json(200, obj)
                    return True
        return False

    def _create_event(self, namespace: str, body: Any) -> None:
        """`create` of an events.k8s.io/v1 Event, validated as the API server does (the
        checks of ValidateEventCreateV1 that a client can get wrong), 409 AlreadyExists."""
        kube = self.kube
        if (
            not isinstance(body, dict)
            or body.get("kind") != "Event"
            or body.get("apiVersion") != "events.k8s.io/v1"
        ):
            self._status(400, "the object provided is not an events.k8s.io/v1 Event")
            return
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if meta.get("namespace", namespace) != namespace:
            self._status(
                400, "the namespace of the provided object does not match the namespace sent on the request"
            )
            return
        name = meta.get("name")
        if not isinstance(event_time := body.get("eventTime"), str) or not _MICRO_TIME.match(event_time):
            self._status(
                400, f'Event in version "v1" cannot be handled as a Event: parsing time "{event_time}"'
            )
            return
        problems = []
        if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            problems.append(("metadata.name", "a lowercase RFC 1123 subdomain must consist of ..."))
        controller = body.get("reportingController")
        if not isinstance(controller, str) or not _QUALIFIED_NAME.match(controller):
            problems.append(("reportingController", "name part must consist of alphanumeric characters"))
        for key in ("reportingInstance", "action", "reason"):
            value = body.get(key)
            if not isinstance(value, str) or not value or len(value) > 128:
                problems.append((key, "Required value or can have at most 128 characters"))
        if body.get("type") not in ("Normal", "Warning"):
            problems.append(("type", "Unsupported value: must be Normal or Warning"))
        note = body.get("note", "")
        if not isinstance(note, str) or len(note.encode()) > 1024:
            problems.append(("note", "can have at most 1024 characters"))
        regarding = body.get("regarding") if isinstance(body.get("regarding"), dict) else {}
        if regarding.get("namespace") != namespace:
            problems.append(("regarding.namespace", "does not match event.namespace"))
        if problems:
            causes = [{"reason": "FieldValueInvalid", "field": f, "message": m} for f, m in problems]
            self._status(422, f'Event.events.k8s.io "{name}" is invalid', {"causes": causes})
            return
        path = f"{EVENTS_PATH.format(namespace=namespace)}/{name}"
        stored = copy.deepcopy(body)
        stored["metadata"] = {**meta, "namespace": namespace, "resourceVersion": "1", "uid": f"uid-{name}"}
        with kube._lock:
            exists = path in kube.objects
            if not exists:
                kube.objects[path] = stored
        if exists:
            details = {"name": name, "group": "events.k8s.io", "kind": "events"}
            self._status(
                409, f'events.events.k8s.io "{name}" already exists', details, reason="AlreadyExists"
            )
            return
        self._json(201, stored)

    def _status(
        self, code: int, message: str, details: dict | None = None, reason: str | None = None
    ) -> None:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason or REASONS.get(code, "Unknown"),
            "code": code,
        }
        if details is not None:
            status["details"] = details
        self._json(code, status)

    def _raw(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)


def _patch_error(doc: Any, ops: list) -> str:
    """The kube-apiserver's text for the first operation of a JSON Patch that cannot be applied."""
    for op in ops:
        path = op.get("path") if isinstance(op, dict) else None
        try:
            doc = jsonpatch.apply_patch(doc, [op])
        except jsonpatch.JsonPatchTestFailed:
            return f"testing value {path} failed: test failed"
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            name = op.get("op") if isinstance(op, dict) else "an"
            return f"{name} operation does not apply: doc is missing path: {path}: missing value"
    return "the patch cannot be applied"


def _default_message(code: int, path: str) -> str:
    collection = _COLLECTION.match(path)
    if collection is not None and code == 403:
        return (
            'events.events.k8s.io is forbidden: User "system:serviceaccount:rollout-system:rollout-hooks" '
            'cannot create resource "events" in API group "events.k8s.io" '
            f'in the namespace "{collection["ns"]}"'
        )
    match = _PATH.match(path)
    if match is None:
        return f"fake failure {code} on {path}"
    what = f'{match["plural"]}.{match["group"]} "{match["name"]}"'
    return {
        401: "Unauthorized",
        403: (
            f'{what} is forbidden: User "system:serviceaccount:rollout-system:rollout-hooks" cannot patch '
            f'resource "{match["plural"]}" in API group "{match["group"]}" in the namespace "{match["ns"]}"'
        ),
        404: f"{what} not found",
        409: f"Operation cannot be fulfilled on {what}: the object has been modified",
        429: "Too many requests, please try again later.",
        500: "Internal error occurred: etcdserver: request timed out",
    }.get(code, f"fake failure {code}")


def parse_label_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """The string form of a label selector (`a=b,c in (x,y),!d,e`) as (key, op, values)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    requirements = []
    for raw in (p.strip() for p in parts):
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", raw)
        if set_match:
            values = [v.strip() for v in set_match[3].split(",") if v.strip()]
            requirements.append((set_match[1], set_match[2], values))
        elif re.fullmatch(r"![^=!\s]+", raw):
            requirements.append((raw[1:], "!", []))
        elif "!=" in raw:
            key, value = raw.split("!=", 1)
            requirements.append((key.strip(), "!=", [value.strip()]))
        elif "=" in raw:
            key, value = raw.split("==", 1) if "==" in raw else raw.split("=", 1)
            requirements.append((key.strip(), "=", [value.strip()]))
        elif re.fullmatch(r"[^=!\s(),]+", raw):
            requirements.append((raw, "exists", []))
        else:
            raise ValueError(repr(raw))
    return requirements


def labels_match(requirements: list[tuple[str, str, list[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        if op == "=" and labels.get(key) != values[0]:
            return False
        if op == "!=" and present and labels[key] == values[0]:
            return False
        if op == "in" and not (present and labels[key] in values):
            return False
        if op == "notin" and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True
