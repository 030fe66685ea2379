"""Validate objects against CustomResourceDefinition schemas, offline.

Schemas come from our CRDs (crds/), Flux's CRDs (tests/schemas/flux/, the top-level files,
which serve v1) and Metacontroller's (tests/schemas/metacontroller/), vendored as test data
with their source and version in each folder's SOURCE.md.

A CRD's openAPIV3Schema is translated into JSON Schema (Draft 2020-12) the way the API server
reads it:

- fields not in the schema are errors (the API server would silently prune them, which is what a
  typo in an example or a hook's status deserves to be told about), except under
  `x-kubernetes-preserve-unknown-fields`;
- `x-kubernetes-int-or-string` accepts an integer or a string, `nullable` accepts null;
- `x-kubernetes-list-type: set` needs unique items, `map` unique `x-kubernetes-list-map-keys`;
- formats `date-time` (RFC 3339), `int32`, `int64` and `duration` (Go) are really checked;
- the root `metadata` gets a small ObjectMeta schema (names, label and annotation keys/values);
- CEL rules (`x-kubernetes-validations`) are not evaluated.

Public API: `validator(kind, version=None, part=None, group=None)`, `validate_object(obj)`,
`object_errors(obj)`, `schema_problems(schema)`, `find_crd(kind)`, `openapi_schema(crd)`,
`to_jsonschema(schema)`, `load_crd(path)`, `FORMAT_CHECKER`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

REPO = Path(__file__).resolve().parents[1]
VENDORED = Path(__file__).resolve().parent / "schemas"
OUR_CRD_DIR = REPO / "crds"
FLUX_CRD_DIR = VENDORED / "flux"
METACONTROLLER_CRD_DIR = VENDORED / "metacontroller"


class SchemaViolation(AssertionError):
    """An object does not match its CRD schema; `errors` lists every problem as 'path: message'."""

    def __init__(self, what: str, errors: list[str]) -> None:
        super().__init__(f"{what} does not match its schema:\n  " + "\n  ".join(errors))
        self.errors = errors


# --- CRD files -------------------------------------------------------------------------


def our_crd_files() -> list[Path]:
    return sorted(OUR_CRD_DIR.glob("*.kuberik.com.yaml"))


def flux_crd_files() -> list[Path]:
    """Flux's CRDs serving v1 (the legacy/ copies are left out on purpose)."""
    return sorted(FLUX_CRD_DIR.glob("*.toolkit.fluxcd.io_*.yaml"))


def metacontroller_crd_files() -> list[Path]:
    return sorted(METACONTROLLER_CRD_DIR.glob("*.metacontroller.k8s.io.yaml"))


def all_crd_files() -> list[Path]:
    return our_crd_files() + flux_crd_files() + metacontroller_crd_files()


@cache
def _load_crd(path: Path) -> dict:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if len(docs) != 1 or docs[0].get("kind") != "CustomResourceDefinition":
        raise ValueError(f"{path}: expected exactly one CustomResourceDefinition document")
    return docs[0]


def load_crd(path: Path | str) -> dict:
    """The CustomResourceDefinition in `path` (a copy: callers may modify it)."""
    return copy.deepcopy(_load_crd(Path(path).resolve()))


@cache
def _crd_index() -> dict[tuple[str, str], Path]:
    index: dict[tuple[str, str], Path] = {}
    for path in all_crd_files():
        crd = _load_crd(path.resolve())
        key = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        if key in index:
            raise ValueError(f"{key} defined by both {index[key]} and {path}")
        index[key] = path.resolve()
    return index


def find_crd(kind: str, group: str | None = None) -> dict:
    """The CRD defining `kind` (in `group` when given). Raises LookupError when none or ambiguous."""
    matches = [p for (g, k), p in _crd_index().items() if k == kind and (group is None or g == group)]
    if len(matches) != 1:
        where = f" in group {group}" if group else ""
        found = "no" if not matches else "several"
        raise LookupError(f"{found} CustomResourceDefinition for kind {kind}{where}")
    return load_crd(matches[0])


def _version_entry(crd: Mapping, version: str | None) -> Mapping:
    versions = crd["spec"]["versions"]
    if version is None:
        storage = [v for v in versions if v.get("storage")]
        if len(storage) != 1:
            raise LookupError(f"{crd['metadata']['name']}: no single storage version")
        return storage[0]
    for entry in versions:
        if entry["name"] == version:
            if not entry.get("served"):
                raise LookupError(f"{crd['metadata']['name']}: version {version} is not served")
            return entry
    raise LookupError(f"{crd['metadata']['name']}: no version {version}")


def openapi_schema(crd: Mapping, version: str | None = None) -> dict:
    """The raw openAPIV3Schema of a served version (default: the storage version)."""
    return copy.deepcopy(_version_entry(crd, version)["schema"]["openAPIV3Schema"])


# --- formats -----------------------------------------------------------------------------

FORMAT_CHECKER = FormatChecker(formats=())

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)
_GO_DURATION = re.compile(r"^[-+]?(0|([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+)$")


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time with a real calendar date and time of day (as metav1.Time reads it)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if not match:
        return False
    date, clock, _, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        datetime.fromisoformat(f"{date}T{clock}{offset}")
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@FORMAT_CHECKER.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@FORMAT_CHECKER.checks("duration")
def _is_go_duration(value: object) -> bool:
    return not isinstance(value, str) or (value != "" and bool(_GO_DURATION.match(value)))


# --- translation to JSON Schema ------------------------------------------------------------

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"

OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": _QUALIFIED_NAME},
            "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE},
        },
        "annotations": {
            "type": "object",
            "propertyNames": {"pattern": _QUALIFIED_NAME},
            "additionalProperties": {"type": "string"},
        },
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": ["string", "null"], "format": "date-time"},
        "deletionTimestamp": {"type": ["string", "null"], "format": "date-time"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
    # The API server owns metadata; anything else it adds is fine.
}


def to_jsonschema(schema: Mapping, *, root: bool = True) -> dict:
    """Translate a Kubernetes structural schema into an equivalent strict JSON Schema.

    `root=True` treats `schema` as a whole object's schema (typed `metadata`, embedded apiVersion
    and kind); pass False for a sub-schema such as the status.
    """
    out = _translate(schema)
    if root and out.get("type") == "object":
        props = out.setdefault("properties", {})
        props["metadata"] = copy.deepcopy(OBJECT_META)
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
    return out


_DROPPED = {"x-kubernetes-validations", "x-kubernetes-map-type", "example", "externalDocs"}


def _translate(schema: Mapping) -> dict:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, Mapping)):
            out[key] = _translate(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_translate(sub) for sub in value]
        elif key in _DROPPED or key in ("nullable", "default"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", copy.deepcopy(OBJECT_META))
    if schema.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    is_object = out.get("type") == "object" or (out.get("type") is None and "properties" in out)
    if (
        is_object
        and "additionalProperties" not in out
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _list_type(validator: Any, list_type: str, instance: Any, schema: Mapping) -> Iterator[ValidationError]:
    if not isinstance(instance, list):
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield ValidationError(f"duplicate entry {item!r} in a list of type set")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[tuple] = set()
        for item in instance:
            if not isinstance(item, Mapping):
                continue
            entry_key = tuple(repr(item.get(k)) for k in keys)
            if entry_key in seen_keys:
                shown = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
                yield ValidationError(f"duplicate entry with {shown} in a list of type map")
            seen_keys.add(entry_key)


KubernetesValidator = validators.extend(Draft202012Validator, {"x-kubernetes-list-type": _list_type})


def _sub_schema(schema: Mapping, part: str) -> Mapping:
    """Descend along a dotted path: 'status', 'spec.healthCheckSelector', 'status.history[]'."""
    node = schema
    for segment in part.split("."):
        items = segment.endswith("[]")
        name = segment[:-2] if items else segment
        if name:
            props = node.get("properties") or {}
            if name not in props:
                raise LookupError(f"no field {name!r} on the way to {part!r}")
            node = props[name]
        if items:
            if "items" not in node:
                raise LookupError(f"{segment!r} is not a list in {part!r}")
            node = node["items"]
    return node


@cache
def validator(
    kind: str, version: str | None = None, part: str | None = None, group: str | None = None
) -> Any:
    """A jsonschema validator for `kind` (whole object, or the sub-schema at `part`)."""
    raw = openapi_schema(find_crd(kind, group), version)
    schema = to_jsonschema(_sub_schema(raw, part), root=False) if part else to_jsonschema(raw, root=True)
    KubernetesValidator.check_schema(schema)
    return KubernetesValidator(schema, format_checker=FORMAT_CHECKER)


def _path_text(error: ValidationError) -> str:
    text = ""
    for step in error.absolute_path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text.lstrip(".") or "<root>"


def errors_of(validator_: Any, instance: Any) -> list[str]:
    """Every violation of `instance`, as sorted 'path: message' lines."""
    return sorted(f"{_path_text(e)}: {e.message}" for e in validator_.iter_errors(instance))


def object_errors(obj: Mapping) -> list[str]:
    """Every schema violation of a whole object, picking the CRD by apiVersion and kind.

    Raises LookupError when no known CRD serves that apiVersion and kind.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or "/" not in api_version or not isinstance(kind, str):
        raise LookupError(f"not a custom resource: apiVersion={api_version!r} kind={kind!r}")
    group, version = api_version.rsplit("/", 1)
    return errors_of(validator(kind, version, group=group), obj)


def validate_object(obj: Mapping) -> None:
    """Raise SchemaViolation (an AssertionError) unless `obj` matches its CRD schema."""
    errors = object_errors(obj)
    if errors:
        name = (obj.get("metadata") or {}).get("name")
        raise SchemaViolation(f"{obj.get('kind')} {name!r}", errors)


# --- structural and documentation checks ------------------------------------------------------

_FORBIDDEN_IN_JUNCTORS = ("type", "description", "default", "additionalProperties", "nullable")


def schema_problems(schema: Mapping, *, descriptions: bool = True) -> list[str]:
    """What keeps `schema` from being a structural schema (and, optionally, fully documented).

    Structural here means: every node has a type unless it is int-or-string or preserves unknown
    fields; arrays have one `items` schema; `properties` and `additionalProperties` are not
    combined; allOf/anyOf/oneOf/not carry no type, description, default, additionalProperties or
    nullable. With `descriptions`, the root and every property need a non-empty description.
    """
    problems: list[str] = []

    def walk(node: Any, where: str, documented: bool, in_junctor: bool, int_or_string: bool = False) -> None:
        label = where or "<root>"
        if not isinstance(node, Mapping):
            problems.append(f"{label}: not a schema object")
            return
        if in_junctor:
            # The one exception: an int-or-string node may spell out its two types in a junctor.
            allowed = {"type"} if int_or_string else set()
            forbidden = [*_FORBIDDEN_IN_JUNCTORS, *(k for k in node if k.startswith("x-kubernetes-"))]
            problems.extend(
                f"{label}: {key} is not allowed inside allOf/anyOf/oneOf/not"
                for key in forbidden
                if key in node and key not in allowed
            )
        else:
            special = node.get("x-kubernetes-int-or-string") or node.get(
                "x-kubernetes-preserve-unknown-fields"
            )
            if "type" not in node and not special:
                problems.append(f"{label}: no type")
            if documented and descriptions and not str(node.get("description") or "").strip():
                problems.append(f"{label}: no description")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{label}: array without items")
        if "properties" in node and node.get("additionalProperties") not in (None, False):
            problems.append(f"{label}: properties and additionalProperties together")
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.{name}" if where else name, True, in_junctor)
        if "items" in node:
            walk(node["items"], f"{where}[]", False, in_junctor)
        if isinstance(node.get("additionalProperties"), Mapping):
            walk(node["additionalProperties"], f"{where}{{}}", False, in_junctor)
        int_or_string = int_or_string or bool(node.get("x-kubernetes-int-or-string"))
        for junctor in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(node.get(junctor) or []):
                walk(sub, f"{where}.{junctor}[{i}]", False, True, int_or_string)
        if "not" in node:
            walk(node["not"], f"{where}.not", False, True, int_or_string)

    walk(schema, "", True, False)
    return problems
