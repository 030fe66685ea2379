"""kubectl-kuberik plan: the controller's decision over YAML files, offline (docs/cli.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hooks.cli import plan
from tests.cli_world import (
    EXAMPLES,
    IN_THE_FREEZE,
    SATURDAY,
    TUESDAY_MORNING,
    baked_status,
    golden,
    parse_time,
    run,
    world,
)


def test_plan_over_the_examples_as_they_are():
    """examples/ carry no statuses: the ImagePolicy has reported no tag yet, so nothing deploys;
    the targets already carry 6.7.0, which is adopted (docs/spec/v1alpha1/rollout.md) and patches nothing."""
    code, out, err = run(["plan", "podinfo/podinfo", "-f", str(EXAMPLES), "--at", TUESDAY_MORNING])
    assert (code, err) == (0, "")
    golden("plan-examples.txt", out)
    doc = json.loads(
        run(["plan", "podinfo/podinfo", "-f", str(EXAMPLES), "--at", TUESDAY_MORNING, "-o", "json"])[1]
    )
    assert {"rollout", "decision", "deployed", "patches"} <= set(doc)
    assert doc["rollout"] == "podinfo/podinfo"
    assert doc["deployed"] == "6.7.0"
    assert doc["patches"] == []
    assert doc["summary"]["ready"]["reason"] == "NoReleasesAvailable"


@pytest.fixture
def baked(tmp_path: Path) -> dict:
    return baked_status(tmp_path)


def _plan_json(directory: Path, at: str) -> dict:
    code, out, err = run(["plan", "-f", str(directory), "--at", at, "-o", "json"])
    assert (code, err) == (0, "")
    return json.loads(out)


def test_a_new_release_in_business_hours_deploys_and_patches_the_flux_objects(tmp_path, baked):
    directory = world(tmp_path, announced="6.7.1", rollout_status=baked, healthy_since="2026-11-30T09:05:00Z")
    code, out, _ = run(["plan", "-f", str(directory), "--at", TUESDAY_MORNING])
    assert code == 0
    golden("plan-deploys.txt", out)
    doc = _plan_json(directory, TUESDAY_MORNING)
    assert (doc["deployedBefore"], doc["deployed"]) == ("6.7.0", "6.7.1")
    patched = {(p["kind"], p["name"]): p["ops"] for p in doc["patches"]}
    assert patched[("OCIRepository", "podinfo")] == [
        {"op": "test", "path": "/spec/ref/tag", "value": "6.7.0"},
        {"op": "replace", "path": "/spec/ref/tag", "value": "6.7.1"},
    ]
    assert patched[("Kustomization", "podinfo")] == [
        {"op": "test", "path": "/spec/postBuild/substitute/VERSION", "value": "6.7.0"},
        {"op": "replace", "path": "/spec/postBuild/substitute/VERSION", "value": "6.7.1"},
    ]
    assert all(p["path"].startswith("/apis/") for p in doc["patches"])
    assert doc == _plan_json(directory, TUESDAY_MORNING)  # stable


@pytest.mark.parametrize(
    ("at", "gate"),
    [
        (SATURDAY, "podinfo-business-hours-podinfo-6cd6dcb0"),  # <schedule>-<rollout>-<hash>
        (IN_THE_FREEZE, "holiday-freeze-podinfo-ea3ebd2b"),
    ],
    ids=["outside business hours", "holiday freeze"],
)
def test_a_schedule_blocks_the_release(tmp_path, baked, at, gate):
    directory = world(tmp_path, announced="6.7.1", rollout_status=baked, healthy_since="2026-11-30T09:05:00Z")
    doc = _plan_json(directory, at)
    assert doc["deployed"] == "6.7.0"
    assert doc["patches"] == []
    blocking = [w for w in doc["summary"]["waits"] if w["what"] == "gate" and w["blocking"]]
    assert [w["name"] for w in blocking] == [gate]
    assert blocking[0]["until"] > at  # "closed until": the schedule's next transition
    golden(f"plan-blocked-{gate}.txt", run(["plan", "-f", str(directory), "--at", at])[1])


def test_malformed_yaml_names_file_and_line(tmp_path):
    (tmp_path / "ok.yaml").write_text((EXAMPLES / "rollout.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [unclosed\n")
    code, out, err = run(["plan", "-f", str(tmp_path)])
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {tmp_path / 'bad.yaml'}:5: malformed YAML: ")
    assert err.count("\n") == 1


def test_an_object_without_a_name_names_file_and_line(tmp_path):
    (tmp_path / "r.yaml").write_text("---\napiVersion: kuberik.com/v1alpha1\nkind: Rollout\nmetadata: {}\n")
    code, _, err = run(["plan", "-f", str(tmp_path / "r.yaml")])
    assert code == 1
    assert err == f"error: {tmp_path / 'r.yaml'}:2: Rollout without metadata.name\n"


def test_plan_input_errors(tmp_path):
    assert (
        run(["plan", "-f", str(tmp_path / "nothing")])[2]
        == f"error: {tmp_path / 'nothing'}: no such file or directory\n"
    )
    assert run(["plan", "-f", str(tmp_path)])[2] == "error: no Rollout (kuberik.com/v1alpha1) in the files\n"
    assert (
        "not an RFC 3339 time" in run(["plan", "podinfo/podinfo", "-f", str(EXAMPLES), "--at", "tuesday"])[2]
    )


def test_schedules_become_gates_before_the_rollout_syncs():
    pool = plan.apply_schedules(plan.load([str(EXAMPLES)]), parse_time(SATURDAY))
    gates = {g["metadata"]["name"]: g for g in pool if g["kind"] == "RolloutGate"}
    assert gates["podinfo-business-hours-podinfo-6cd6dcb0"]["spec"]["passing"] is False  # Allow, Saturday
    assert gates["holiday-freeze-podinfo-ea3ebd2b"]["spec"]["passing"] is True  # Deny, not in the window
    assert gates["podinfo-approval"]["spec"]["passing"] is True  # the manual gate, as written


def test_a_status_that_never_settles_is_reported_not_looped(monkeypatch):
    from hooks.cli import engine

    real = engine.run_sync
    counter = iter(range(10_000))

    def restless(body, now, *, dry_run):
        result = real(body, now, dry_run=dry_run)
        result.status = {**result.status, "observedGeneration": next(counter)}
        return result

    monkeypatch.setattr(engine, "run_sync", restless)
    code, _, err = run(["plan", "podinfo/podinfo", "-f", str(EXAMPLES), "--at", TUESDAY_MORNING])
    assert code == 1
    assert (
        err == f"error: the status did not settle within {plan.MAX_ROUNDS} syncs (a bug: please report it)\n"
    )


def test_objects_without_a_namespace_take_the_one_given(tmp_path):
    """Manifests as kept in Git often name no namespace: `-n` gives them one, as `kubectl apply -n`."""
    for path in EXAMPLES.glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            doc.get("metadata", {}).pop("namespace", None)
        (tmp_path / path.name).write_text(yaml.safe_dump_all(docs))
    code, _, err = run(["plan", "-f", str(tmp_path), "--at", TUESDAY_MORNING])
    assert code == 1
    assert err.endswith("flux-image.yaml:9: ImagePolicy podinfo without metadata.namespace (or pass -n)\n")
    code, out, err = run(["plan", "-f", str(tmp_path), "-n", "podinfo", "--at", TUESDAY_MORNING])
    assert (code, err) == (0, "")
    assert out.startswith("Rollout podinfo/podinfo at 2026-12-01T09:30:00Z")
