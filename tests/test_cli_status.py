"""kubectl-kuberik get / status / history: what a person reads, and the exit codes (docs/cli.md)."""

from __future__ import annotations

import json

import pytest
import yaml

from hooks.cli import main as cli
from tests.cli_world import baking_world, flux_ready, golden, policy_status, run, schedule_gate, serve
from tests.rollout_world import NS, World


@pytest.fixture
def baking(fake_kube, monkeypatch):
    world = baking_world()
    gate = schedule_gate(world, False, "2026-03-02T10:00:00Z")
    world.gates[gate["metadata"]["name"]] = gate
    world.sync()
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    return world


def test_status_of_a_baking_rollout(baking):
    code, out, err = run(["status", "app", "-n", NS])
    assert err == ""
    assert code == 2  # a gate blocks 1.1.0
    golden("status-baking.txt", out)
    assert "deadline:  bake ends at 2026-03-02T09:10:00Z (in 9m)" in out
    assert "closed until 2026-03-02T10:00:00Z" in out


def test_status_json_parses_and_is_stable(baking):
    first = run(["status", "app", "-n", NS, "-o", "json"])
    second = run(["status", "app", "-n", NS, "-o", "json"])
    assert first == second
    doc = json.loads(first[1])
    assert doc["deployed"] == "1.0.0"
    assert doc["verdict"] == "blocked"
    assert doc["bake"]["deadline"] == "2026-03-02T09:10:00Z"
    assert doc["candidates"] == ["1.1.0"]
    schedule = next(w for w in doc["waits"] if w.get("schedule") == "office-hours")
    assert schedule["until"] == "2026-03-02T10:00:00Z"
    golden("status-baking.json", first[1])
    _code, text, _ = run(["status", "app", "-n", NS, "-o", "yaml"])
    assert yaml.safe_load(text) == doc


def test_get_lists_the_namespace(baking):
    code, out, _ = run(["get", "-n", NS])
    assert code == 2
    golden("get.txt", out)
    code, out, _ = run(["get", "-A", "-o", "json"])
    assert json.loads(out)["rollouts"][0]["namespace"] == NS


def test_get_in_an_empty_namespace(fake_kube):
    code, out, _ = run(["get", "-n", "empty"])
    assert (code, out) == (0, "No Rollouts in namespace empty.\n")


def test_history(baking):
    code, out, _ = run(["history", "app", "-n", NS])
    assert code == 0
    golden("history.txt", out)
    doc = json.loads(run(["history", "app", "-n", NS, "-o", "json"])[1])
    assert doc["history"][0]["tag"] == "1.0.0"
    assert doc["history"][0]["bakeDuration"] == "1m"  # started at 09:00, still running at 09:01


def failed_world() -> World:
    world = baking_world()
    world.gates.clear()
    world.advance(minutes=1)
    world.check("web", "Unhealthy", changed=world.now, error=world.now, message="5xx above 1%")
    world.sync()
    assert world.bake == "Failed"
    return world


def test_failed_bake_exits_3(fake_kube, monkeypatch):
    world = failed_world()
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    code, out, _ = run(["status", "app", "-n", NS])
    assert code == 3
    assert "bake:      Failed (A HealthCheck reported an error after bake started.)" in out
    code, out, _ = run(["history", "app", "-n", NS])
    assert "failed: shop/web" in out


def test_up_to_date_exits_0(fake_kube, monkeypatch):
    world = World(spec={"releasesImagePolicy": {"name": "app"}})
    policy_status(world, "2.0.0")
    world.ocirepo("manifests", "2.0.0")
    world.ocirepos["manifests"] = flux_ready(world.ocirepos["manifests"], "2.0.0", world.now)
    world.sync()
    serve(fake_kube, world)
    monkeypatch.setattr(cli, "clock", lambda: world.now)
    code, out, _ = run(["status", "app", "-n", NS])
    assert code == 0, out
    assert "waiting on: nothing" in out


def test_gates_that_cannot_be_read_degrade_with_a_warning(baking, fake_kube):
    message = (
        'rolloutgates.kuberik.com is forbidden: User "alice" cannot list resource "rolloutgates" in API '
        'group "kuberik.com" in the namespace "shop"'
    )
    fake_kube.fail(403, path="/apis/kuberik.com/v1alpha1/namespaces/shop/rolloutgates", message=message)
    code, out, err = run(["status", "app", "-n", NS])
    assert code == 2
    assert err.startswith("warning: forbidden: you may not list rolloutgates.kuberik.com in namespace shop: ")
    assert "gate freeze: Gate is not passing" in out


def test_watch_prints_again_only_when_something_changed(baking, fake_kube):
    code, out, _ = run(["status", "app", "-n", NS, "-w", "--watch-rounds", "2"])
    assert code == 2
    assert out.count("Rollout shop/app") == 1  # nothing changed between the rounds
    gets = [r for r in fake_kube.requests if r.path.endswith("/rollouts/app")]
    assert len(gets) == 3
