"""kubectl-kuberik why: the request Metacontroller would send, the engine's decision, its reasons."""

from __future__ import annotations

import json

import pytest

from hooks.cli import engine, plan, why
from hooks.cli import main as cli
from hooks.cli.kube import Kube, load_config
from tests.cli_world import (
    SATURDAY,
    baked_status,
    baking_world,
    golden,
    parse_time,
    run,
    schedule_gate,
    serve,
    world,
)
from tests.rollout_world import NS


@pytest.fixture
def baking(fake_kube, monkeypatch):
    world = baking_world()
    gate = schedule_gate(world, False, "2026-03-02T10:00:00Z")
    world.gates[gate["metadata"]["name"]] = gate
    world.sync()
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    return world


def _keys(related: dict) -> dict[str, set[str]]:
    return {group: set(objects) for group, objects in related.items()}


def test_the_request_is_the_one_metacontroller_sends(baking, fake_kube):
    """Same groups, same `<namespace>/<name>` keys, same objects as the world's own v2 request."""
    kube = Kube(load_config())
    rollout = kube.get("Rollout", "app", NS)
    body = why.request_for(kube, rollout)
    expected = baking.request()["related"]
    assert _keys(body["related"]) == _keys(expected)
    for group, objects in expected.items():
        for key, obj in objects.items():
            got = body["related"][group][key]
            assert got["spec"] == obj["spec"]
            assert got.get("status") == obj.get("status")
    # The rules came from the Rollout's own customize hook: the label rule for HealthChecks was
    # sent as a server-side labelSelector, and only in the Rollout's namespace.
    lists = [r for r in fake_kube.requests if r.path.endswith("/healthchecks")]
    assert [(r.path, r.query.get("labelSelector")) for r in lists] == [
        ("/apis/kuberik.com/v1alpha1/namespaces/shop/healthchecks", ["app=app"])
    ]
    # The engine answers that request exactly as the hook does (dry-run actuation).
    ours = engine.run_sync(body, baking.now, dry_run=True).status
    assert ours["history"] == baking.status["history"]
    assert ours["gates"] == baking.status["gates"]


def test_why_prints_the_engines_own_reason(baking):
    code, out, err = run(["why", "app", "-n", NS])
    assert err == ""
    assert code == 2
    golden("why-no-reasons.txt", out)
    assert "1.1.0: waiting for the bake of 1.0.0" in out


@pytest.fixture
def baked(fake_kube, monkeypatch):
    """The baking world once the bake of 1.0.0 has Succeeded: 1.1.0 is now held back by a gate."""
    world = baking_world()
    world.advance(minutes=11)
    world.sync()
    assert world.bake == "Succeeded"
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    return world


def test_why_prints_the_engines_reasons_verbatim(baked):
    code, out, _ = run(["why", "app", "-n", NS])
    assert code == 2
    golden("why-reasons.txt", out)
    assert "  1.1.0: gated: gate 'freeze' is not passing\n" in out
    assert "note:" not in out


def test_why_tag_json(baked):
    code, out, _ = run(["why", "app", "1.1.0", "-n", NS, "-o", "json"])
    assert code == 2
    doc = json.loads(out)
    assert doc["candidates"] == [
        {"tag": "1.1.0", "code": "gated", "reason": "gated: gate 'freeze' is not passing"}
    ]
    assert doc["deployed"] == "1.0.0"
    assert doc["engineReasons"] is True
    assert out == run(["why", "app", "1.1.0", "-n", NS, "-o", "json"])[1]  # stable


def test_a_reason_naming_a_schedule_gate_says_until_when(fake_kube, monkeypatch):
    world = baking_world()
    del world.gates["freeze"]
    gate = schedule_gate(world, False, "2026-03-02T10:00:00Z")
    world.gates[gate["metadata"]["name"]] = gate
    world.advance(minutes=11)
    world.sync()
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    code, out, _ = run(["why", "app", "-n", NS])
    assert code == 2
    assert (
        "  1.1.0: gated: gate 'office-hours-app-1a2b3c4d' is not passing; "
        "closed until 2026-03-02T10:00:00Z (schedule office-hours)\n"
    ) in out


def test_why_for_the_deployed_tag_and_an_unknown_one(baking):
    code, out, _ = run(["why", "app", "1.0.0", "-n", NS])
    assert "  1.0.0: deployed\n" in out  # the engine explains the asked tag too
    code, out, _ = run(["why", "app", "7.7.7", "-n", NS])
    assert code == 2
    assert "  7.7.7: unknown: not a known release\n" in out


def test_why_names_the_collection_it_could_not_list(baking, fake_kube):
    message = (
        'ocirepositories.source.toolkit.fluxcd.io is forbidden: User "alice" cannot list resource '
        '"ocirepositories" in API group "source.toolkit.fluxcd.io" in the namespace "shop"'
    )
    path = "/apis/source.toolkit.fluxcd.io/v1/namespaces/shop/ocirepositories"
    fake_kube.fail(403, path=path, message=message)
    code, out, err = run(["why", "app", "-n", NS])
    assert code == 1
    assert out == ""
    assert err.startswith(
        "error: forbidden: you may not list ocirepositories.source.toolkit.fluxcd.io in namespace shop: "
    )


def test_why_writes_nothing(baking, fake_kube):
    run(["why", "app", "-n", NS])
    assert {r.method for r in fake_kube.requests} == {"GET"}


def test_why_over_the_examples_served_by_a_cluster(fake_kube, tmp_path, monkeypatch):
    """The examples with their statuses, as a cluster holds them (schedule gates created by the
    schedule hooks): 6.7.1 is announced on a Saturday, outside the business-hours window."""
    (tmp_path / "baked").mkdir()
    (tmp_path / "now").mkdir()
    status = baked_status(tmp_path / "baked")
    healthy = "2026-11-30T09:05:00Z"
    directory = world(tmp_path / "now", announced="6.7.1", rollout_status=status, healthy_since=healthy)
    at = parse_time(SATURDAY)
    for obj in plan.apply_schedules(plan.load([str(directory)]), at):
        fake_kube.put(obj)
    monkeypatch.setattr(cli, "clock", lambda: at)
    code, out, err = run(["why", "podinfo", "-n", "podinfo"])
    assert (code, err) == (2, "")
    golden("why-examples-saturday.txt", out)
    assert (
        "podinfo-business-hours (gate podinfo-business-hours-podinfo-6cd6dcb0): "
        "closed until 2026-12-07T08:00:00Z" in out
    )
    # The same world offline gives the same decision.
    offline = json.loads(run(["plan", "-f", str(directory), "--at", SATURDAY, "-o", "json"])[1])
    online = json.loads(run(["why", "podinfo", "-n", "podinfo", "-o", "json"])[1])
    assert online["summary"]["waits"] == offline["summary"]["waits"]
    assert online["deployed"] == offline["deployed"] == "6.7.0"
