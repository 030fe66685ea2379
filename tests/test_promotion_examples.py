"""examples/promotion/: every object matches its CRD, and each downstream Rollout's upstreams are
in the same file and export to it (docs/promotion.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from hooks.rollout import promotion
from tests.crd_schema import object_errors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "promotion"
FILES = sorted(EXAMPLES.glob("*.yaml"))


def _objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _id(obj: dict) -> str:
    md = obj["metadata"]
    return f"{obj['kind']}/{md.get('namespace', '')}/{md['name']}"


def _namespace_labels(objects: list[dict], name: str) -> dict[str, str]:
    """The Namespace's labels as the API server stores them (it adds kubernetes.io/metadata.name)."""
    [ns] = [o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == name]
    return {**(ns["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}


def test_both_examples_are_there() -> None:
    assert [f.name for f in FILES] == ["hub.yaml", "pipeline.yaml"]


@pytest.mark.parametrize("obj", [o for f in FILES for o in _objects(f) if o["apiVersion"] != "v1"], ids=_id)
def test_every_object_matches_its_crd(obj: dict) -> None:
    assert object_errors(obj) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_upstreams_exist_in_the_file_and_export_to_the_downstream(path: Path) -> None:
    objects = _objects(path)
    rollouts = [o for o in objects if o["kind"] == "Rollout"]
    downstreams = 0
    for rollout in rollouts:
        md = rollout["metadata"]
        parsed = promotion.parse(rollout["spec"].get("promotion"), md["namespace"], md["name"])
        if parsed is None:
            continue
        downstreams += 1
        labels = _namespace_labels(objects, md["namespace"])
        observed = promotion.observe(
            parsed,
            promotion.Source(md["name"], md["namespace"]),
            rollouts,
            [{"metadata": {"name": md["namespace"], "labels": labels}}],
            now=datetime(2026, 12, 1, tzinfo=UTC),
            is_lower=lambda a, b: False,
        )
        for state in observed.sources:
            assert state.found, (
                f"{md['namespace']}/{md['name']}: upstream {state.source.ref} not in {path.name}"
            )
            assert state.exported, f"{state.source.ref} does not export to {md['namespace']}"
        assert observed.cycles == ()
    assert downstreams >= 1
