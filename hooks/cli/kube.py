"""The Kubernetes API under the user's kubeconfig (lightkube), with one-line errors.

Every failure becomes a CliError naming the object or collection the user could not read
or write, so RBAC denials, typos and an unreachable cluster read as what they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ALL_NS, ApiError, Client, ConfigError, KubeConfig, operators
from lightkube.config.kubeconfig import SingleConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import PatchType

from hooks.api.kinds import KINDS, Kind
from hooks.cli.errors import CliError

#: Field manager recorded in managedFields for the CLI's own changes to a Rollout.
FIELD_MANAGER = "kubectl-kuberik"
CALL_TIMEOUT_S = 10.0


def resource_name(kind: Kind) -> str:
    """`rollouts.kuberik.com`, as kubectl and RBAC messages name a resource."""
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def kind_for_rule(api_version: str, resource: str) -> Kind:
    """The kind a customize rule (`apiVersion`, plural `resource`) asks for."""
    for kind in KINDS.values():
        if kind.api_version == api_version and kind.plural == resource:
            return kind
    raise CliError(f"the customize hook asked for {resource} ({api_version}), which the CLI does not know")


def label_pairs(selector: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """A metav1.LabelSelector as lightkube label pairs (one per requirement)."""
    pairs: list[tuple[str, Any]] = []
    if not selector:
        return pairs
    for key, value in (selector.get("matchLabels") or {}).items():
        pairs.append((key, operators.equal(value)))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
        if op == "In":
            pairs.append((key, operators.in_(values)))
        elif op == "NotIn":
            pairs.append((key, operators.not_in(values)))
        elif op == "Exists":
            pairs.append((key, operators.exists()))
        else:
            pairs.append((key, operators.not_exists()))
    return pairs


def _where(kind: Kind, name: str | None, namespace: str | None) -> str:
    obj = f'{resource_name(kind)} "{name}"' if name else resource_name(kind)
    return f"{obj} in namespace {namespace}" if namespace and kind.namespaced else obj


def load_config(kubeconfig: str | None = None, context: str | None = None) -> SingleConfig:
    """The user's kubeconfig (`--kubeconfig`, else $KUBECONFIG, else ~/.kube/config), or in-cluster."""
    try:
        if kubeconfig:
            config = KubeConfig.from_file(kubeconfig)
        else:
            listed = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
            found = next((p for p in listed if Path(p).expanduser().is_file()), None)
            if found is not None:
                config = KubeConfig.from_file(found)
            elif listed:
                raise CliError(f"no kubeconfig file at {os.pathsep.join(listed)} ($KUBECONFIG)")
            else:
                config = KubeConfig.from_env()
        single = config.get(context_name=context)
    except CliError:
        raise
    except (ConfigError, KeyError, OSError, ValueError) as exc:
        raise CliError(f"cannot load the kubeconfig: {_text(exc)}") from None
    if single is None:
        raise CliError("the kubeconfig has no current context (pass --context)")
    return single


class Kube:
    """A thin lightkube wrapper that returns plain dicts and raises CliError."""

    def __init__(self, config: SingleConfig, namespace: str | None = None) -> None:
        self.config = config
        self.namespace = namespace or config.namespace or "default"
        try:
            self.client = Client(
                config=config, timeout=httpx2.Timeout(CALL_TIMEOUT_S), field_manager=FIELD_MANAGER
            )
        except Exception as exc:
            raise CliError(f"cannot use the kubeconfig: {_text(exc)}") from None
        self._resources: dict[str, Any] = {}

    @property
    def server(self) -> str:
        return str(self.config.cluster.server)

    def _res(self, kind: Kind) -> Any:
        if kind.kind not in self._resources:
            res: Any
            if kind.namespaced:
                res = create_namespaced_resource(kind.group, kind.version, kind.kind, kind.plural)
            else:
                res = create_global_resource(kind.group, kind.version, kind.kind, kind.plural)
            self._resources[kind.kind] = res
        return self._resources[kind.kind]

    def get(self, kind: str, name: str, namespace: str | None = None, *, missing_ok: bool = False) -> Any:
        k = KINDS[kind]
        ns = (namespace or self.namespace) if k.namespaced else None
        try:
            obj = self.client.get(self._res(k), name, namespace=ns)
        except Exception as exc:
            if missing_ok and _code(exc) == 404:
                return None
            raise self._error(exc, "get", k, name, ns) from None
        return obj.to_dict()

    def list(self, kind: str, namespace: str | None, selector: Mapping[str, Any] | None = None) -> list[dict]:
        """Objects of `kind` in `namespace` (None: every namespace) matching `selector`."""
        k = KINDS[kind]
        ns = (namespace if namespace is not None else ALL_NS) if k.namespaced else None
        try:
            labels: Any = label_pairs(selector) or None  # lightkube takes a list of pairs too
            items = self.client.list(self._res(k), namespace=ns, labels=labels)
            return [item.to_dict() for item in items]
        except Exception as exc:
            raise self._error(exc, "list", k, None, namespace) from None

    def json_patch(self, kind: str, name: str, namespace: str, ops: Sequence[Mapping[str, Any]]) -> dict:
        k = KINDS[kind]
        try:
            obj = self.client.patch(
                self._res(k), name, [dict(op) for op in ops], namespace=namespace, patch_type=PatchType.JSON
            )
        except Exception as exc:
            raise self._error(exc, "patch", k, name, namespace) from None
        return obj.to_dict()

    def _error(self, exc: BaseException, verb: str, kind: Kind, name: str | None, ns: str | None) -> CliError:
        what = _where(kind, name, ns)
        if isinstance(exc, ApiError):
            code = _code(exc)
            message = _text(exc)
            if code == 404:
                if name:
                    return CliError(
                        f"{kind.kind} {name} not found in namespace {ns}" if ns else f"{what} not found"
                    )
                return CliError(
                    f"{resource_name(kind)} is not served by the API server (is the CRD installed?)"
                )
            if code == 403:
                return CliError(f"forbidden: you may not {verb} {what}: {message}")
            if code == 401:
                return CliError(f"unauthorized: the API server at {self.server} refused your credentials")
            if code in (409, 422) and verb == "patch" and _is_conflict(exc):
                return CliError(
                    f"{kind.kind} {ns}/{name} changed meanwhile (the patch's test failed): re-run"
                )
            return CliError(f"cannot {verb} {what}: API server answered {code}: {message}")
        if isinstance(exc, httpx2.TimeoutException):
            return CliError(
                f"cannot reach the Kubernetes API at {self.server}: timed out after {CALL_TIMEOUT_S:g}s"
            )
        if isinstance(exc, httpx2.TransportError):
            return CliError(f"cannot reach the Kubernetes API at {self.server}: {_text(exc)}")
        if isinstance(exc, ConfigError):
            return CliError(f"cannot use the kubeconfig: {_text(exc)}")
        return CliError(f"cannot {verb} {what}: {type(exc).__name__}: {_text(exc)}")


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, ApiError):
        code = getattr(exc.status, "code", None)
        if isinstance(code, int):
            return code
        return exc.response.status_code if exc.response is not None else None
    return None


def _is_conflict(exc: ApiError) -> bool:
    """409, or a 422 without field causes: what a failed JSON Patch `test` looks like."""
    if _code(exc) == 409:
        return True
    details = getattr(exc.status, "details", None)
    causes = getattr(details, "causes", None) or []
    return not any(getattr(cause, "field", None) for cause in causes)


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
