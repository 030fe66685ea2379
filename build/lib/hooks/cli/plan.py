"""`plan`: the controller's decision over YAML files, with no cluster (for CI on a pull request).

Steps, each with the hooks' own functions: schedules become RolloutGates (the schedule sync
hook at `--at`), then the Rollout is synced the way Metacontroller would — its customize
rules select the related objects from the files, and every returned status is persisted and
synced again — until the status stops changing. The patches printed are those the last sync
plans, i.e. what the controller sends once the decision is persisted (write-ahead).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from hooks.cli import engine, report
from hooks.cli.errors import CliError
from hooks.cli.kube import KINDS
from hooks.cli.related import object_key, select_offline, sync_request
from hooks.cli.why import candidate_lines
from hooks.k8s import format_time, labels_of, meta
from hooks.schedule import hook as schedule_hook
from hooks.schedule.gates import SCHEDULE_LABEL, schedule_label_value

#: Syncs until the status must have settled; a well-behaved engine needs two or three.
MAX_ROUNDS = 20
_SUFFIXES = (".yaml", ".yml", ".json")


# --- reading files --------------------------------------------------------------------------


def _documents(path: Path) -> Iterable[tuple[int, Any]]:
    """(line, document) of every YAML document in a file; a parse error names file and line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise CliError(f"{where}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: malformed YAML: {exc}") from None
    finally:
        loader.dispose()


def _objects(path: Path, line: int, doc: Any, namespace: str | None) -> Iterable[dict]:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise CliError(f"{path}:{line}: expected a Kubernetes object, found {type(doc).__name__}")
    if doc.get("kind") == "List" or (str(doc.get("kind", "")).endswith("List") and "items" in doc):
        for item in doc.get("items") or []:
            yield from _objects(path, line, item, namespace)
        return
    kind = KINDS.get(str(doc.get("kind")))
    if kind is None or doc.get("apiVersion") != kind.api_version:
        return  # not an object the controller reads (a kustomize.config.k8s.io Kustomization, ...)
    md = doc.get("metadata")
    if not isinstance(md, dict) or not isinstance(md.get("name"), str) or not md["name"]:
        raise CliError(f"{path}:{line}: {doc.get('kind')} without metadata.name")
    if kind.namespaced and not md.get("namespace") and namespace:
        md["namespace"] = namespace  # as `kubectl apply -n` would
    if kind.namespaced and not md.get("namespace"):
        raise CliError(f"{path}:{line}: {doc['kind']} {md['name']} without metadata.namespace (or pass -n)")
    yield doc


def load(paths: Iterable[str], namespace: str | None = None) -> list[dict]:
    """Every object of a kind the controller reads, from files and directories (recursively);
    `namespace` is given to namespaced objects that name none."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"{raw}: no such file or directory")
    seen: dict[tuple[str, str], Path] = {}
    objects = []
    for file in files:
        for line, doc in _documents(file):
            for obj in _objects(file, line, doc, namespace):
                key = (obj["kind"], object_key(obj))
                if key in seen:
                    raise CliError(f"{file}:{line}: {obj['kind']} {key[1]} is also defined in {seen[key]}")
                seen[key] = file
                objects.append(obj)
    return objects


# --- schedules --------------------------------------------------------------------------------


def _owned_by(gate: dict, kind: str, name: str) -> bool:
    refs = meta(gate).get("ownerReferences")
    if isinstance(refs, list) and refs:
        return any(isinstance(r, dict) and r.get("kind") == kind and r.get("name") == name for r in refs)
    return labels_of(gate).get(SCHEDULE_LABEL) == schedule_label_value(name)


def apply_schedules(pool: list[dict], at: datetime) -> list[dict]:
    """The pool with every schedule's gates as its sync hook computes them at `at`."""
    schedules = [o for o in pool if o["kind"] in ("RolloutSchedule", "ClusterRolloutSchedule")]
    for schedule in schedules:
        cluster = schedule["kind"] == "ClusterRolloutSchedule"
        name = str(meta(schedule)["name"])
        ctx = engine._Context(at)
        customize = schedule_hook.customize_cluster if cluster else schedule_hook.customize_namespaced
        rules = customize({"parent": schedule}, ctx)["relatedResources"]
        namespace = None if cluster else str(meta(schedule)["namespace"])
        related = select_offline(rules, pool, namespace)
        owned = [g for g in pool if g["kind"] == "RolloutGate" and _owned_by(g, schedule["kind"], name)]
        children = {"RolloutGate.kuberik.com/v1alpha1": {object_key(g): g for g in owned}}
        body = sync_request(schedule, related, schedule["kind"].lower() + "s.kuberik.com", children)
        sync = schedule_hook.sync_cluster if cluster else schedule_hook.sync_namespaced
        answer = sync(body, ctx)
        # Metacontroller applies the returned children and deletes the owned ones not returned.
        pool = [g for g in pool if not any(g is o for o in owned)]
        for gate in answer["children"]:
            gate = copy.deepcopy(gate)
            gate_key = object_key(gate)
            pool = [o for o in pool if not (o["kind"] == "RolloutGate" and object_key(o) == gate_key)]
            pool.append(gate)
    return pool


# --- the Rollout -----------------------------------------------------------------------------


@dataclass
class Plan:
    rollout: dict  # with the settled status
    before: str | None
    decision: str
    rounds: int
    result: engine.Result
    gates: list[dict]


def choose_rollout(pool: list[dict], name: str | None) -> dict:
    rollouts = [o for o in pool if o["kind"] == "Rollout"]
    if name is not None:
        rollouts = [r for r in rollouts if meta(r).get("name") == name or object_key(r) == name]
        if not rollouts:
            raise CliError(f"no Rollout {name} in the files")
    if not rollouts:
        raise CliError("no Rollout (kuberik.com/v1alpha1) in the files")
    if len(rollouts) > 1:
        names = ", ".join(sorted(object_key(r) for r in rollouts))
        raise CliError(f"the files hold several Rollouts ({names}): name one")
    return copy.deepcopy(rollouts[0])


def run(pool: list[dict], name: str | None, at: datetime) -> Plan:
    pool = apply_schedules(pool, at)
    rollout = choose_rollout(pool, name)
    namespace = str(meta(rollout)["namespace"])
    if not isinstance(rollout.get("status"), dict):
        rollout["status"] = {}
    before = report.tag_of(report.head(rollout["status"])) or None
    decision = ""
    result: engine.Result | None = None
    for round_ in range(1, MAX_ROUNDS + 1):
        rules = engine.rollout_rules(rollout)
        related = select_offline(rules, pool, namespace)
        result = engine.run_sync(sync_request(rollout, related, engine.ROLLOUT_CONTROLLER), at, dry_run=False)
        if round_ == 1:
            decision = str(getattr(result.evaluation, "log", {}).get("decision", ""))
        if result.status == rollout["status"]:
            break
        rollout["status"] = result.status
    else:
        raise CliError(f"the status did not settle within {MAX_ROUNDS} syncs (a bug: please report it)")
    assert result is not None
    gates = [g for g in pool if g["kind"] == "RolloutGate" and meta(g).get("namespace") == namespace]
    return Plan(rollout, before, decision, round_, result, gates)


def as_data(p: Plan, at: datetime) -> dict:
    """The `plan -o json` document."""
    md = meta(p.rollout)
    status = p.rollout["status"]
    deployed = report.tag_of(report.head(status)) or None
    return {
        "rollout": f"{md.get('namespace')}/{md.get('name')}",
        "at": format_time(at),
        "decision": p.decision,
        "deployedBefore": p.before,
        "deployed": deployed,
        "syncs": p.rounds,
        "resyncAfterSeconds": p.result.resync_after,
        "candidates": candidate_lines(status, engine.explain(p.result.evaluation), None, p.gates),
        "summary": report.summary(p.rollout, at, p.gates),
        "patches": [
            {
                "kind": patch.kind,
                "namespace": patch.namespace,
                "name": patch.name,
                "path": patch.path,
                "ops": [dict(op) for op in patch.ops],
            }
            for patch in p.result.patches
        ],
        "status": status,
    }
