"""Status size bounds (hooks/rollout/bounds.py): every list that grows with time is capped."""

from __future__ import annotations

from datetime import timedelta

import orjson

from hooks.rollout import bounds
from hooks.rollout.releases import bound
from tests.rollout_world import T0, World, ts


def release(i: int, tag_chars: int = 20) -> dict:
    return {
        "tag": f"{i:0{tag_chars}d}",
        "digest": f"sha256:{i:064x}",
        "discoveredAt": ts(T0 - timedelta(minutes=i)),
    }


def test_releases_respect_the_byte_budget_and_keep_the_newest():
    known = [release(i, tag_chars=120) for i in range(1000)]
    kept = bound(known, [], min_count=1000, retention=timedelta(days=7), now=T0)
    assert kept == known[-len(kept) :]
    assert sum(len(orjson.dumps(r)) + 1 for r in kept) <= bounds.RELEASES_BYTES
    assert len(kept) == bounds.RELEASES_BYTES // (len(orjson.dumps(known[0])) + 1), (
        "no more dropped than needed"
    )
    assert bound(kept, [], min_count=1000, retention=timedelta(days=7), now=T0) == kept


def test_the_announced_release_is_never_dropped():
    known = [release(i, tag_chars=120) for i in range(1000)]
    kept = bound(known, [], min_count=1000, retention=timedelta(days=7), now=T0, announced=known[0]["tag"])
    assert kept[0] == known[0]
    assert (
        bound(kept, [], min_count=1000, retention=timedelta(days=7), now=T0, announced=known[0]["tag"])
        == kept
    )


def test_history_keeps_failed_check_details_on_the_newest_entries_only():
    checks = [{"name": f"c{i}", "namespace": "ns", "message": "x" * 1000} for i in range(50)]
    history = [{"id": 200 - i, "bakeStatus": "Failed", "failedHealthChecks": checks} for i in range(120)]
    compacted = bounds.compact_history(history)
    assert len(compacted) == bounds.MAX_HISTORY
    assert all(len(e["failedHealthChecks"]) == bounds.FAILED_CHECKS_PER_ENTRY for e in compacted[:10])
    assert all(
        len(c["message"]) == bounds.FAILED_CHECK_MESSAGE_CHARS for c in compacted[0]["failedHealthChecks"]
    )
    assert all("failedHealthChecks" not in e for e in compacted[10:])
    assert bounds.compact_history(compacted) == compacted


def test_long_operator_texts_are_cut_in_history_and_conditions():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.annotations = {
        "rollout.kuberik.com/deploy-message": "m" * 5000,
        "rollout.kuberik.com/deploy-user": "u" * 5000,
        "rollout.kuberik.com/force-deploy": "f" * 5000,
    }
    world.sync()
    assert world.condition("Ready") == ("False", "ForceDeployVersionUnknown")
    assert len(world.message("Ready")) <= bounds.CONDITION_MESSAGE_CHARS
    # deploy-message/deploy-user describe only the manual deploy of the same change (docs/operations.md)
    world.annotations["rollout.kuberik.com/force-deploy"] = "1.0.0"
    world.annotations["rollout.kuberik.com/deploy-message"] = "n" * 5000
    world.annotations["rollout.kuberik.com/deploy-user"] = "v" * 5000
    world.spec["wantedVersion"] = "2.0.0"
    world.sync()
    entry = world.history[0]
    assert (
        entry["message"] == "n" * bounds.DEPLOY_MESSAGE_CHARS
    )  # its first 1024 characters (docs/operations.md)
    assert len(entry["triggeredBy"]["name"]) == bounds.NAME_CHARS


def test_reported_candidates_are_the_best_hundred():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "wantedVersion": "0.0.1"})
    world.status = {"availableReleases": [{"tag": f"1.0.{i}", "discoveredAt": ts(T0)} for i in range(300)]}
    world.release("1.0.299")
    world.sync()
    assert world.status["releaseCandidates"] == [f"1.0.{i}" for i in range(299, 199, -1)]
