"""Operator stories over hours and days (docs/spec/v1alpha1/rollout.md, revised), through /rollout/sync.

Each `world.sync()` carries the returned status forward as Metacontroller would and checks the
CRD status schema and the fixed point (tests/rollout_world.py). Flux objects carry the status
Flux writes (tests/flux_objects.py); `flux_applies()` stores our patch and lets Flux reconcile.
"""

from __future__ import annotations

from datetime import timedelta

from hooks.metacontroller import parse_request
from hooks.rollout.engine import evaluate
from tests.rollout_world import NS, T0, World, ts

FORCE = "rollout.kuberik.com/force-deploy"
BYPASS = "rollout.kuberik.com/bypass-gates"
UNBLOCK = "rollout.kuberik.com/unblock-failed"
RETRY = "rollout.kuberik.com/retry"
MESSAGE = "rollout.kuberik.com/deploy-message"
USER = "rollout.kuberik.com/deploy-user"
CHECKED = {"bakeTime": "30m", "deployTimeout": "1h", "healthCheckSelector": {"matchLabels": {"app": "app"}}}


def tags(world: World) -> list[str]:
    return [h["version"]["tag"] for h in world.history]


def triggers(world: World) -> list[str]:
    return [h["trigger"] for h in world.history]


def healthy(world: World) -> None:
    world.check("smoke", "Healthy", changed=world.now)


def bake_through(world: World) -> None:
    """The deployed version is applied by Flux, its checks turn healthy, and its bake ends."""
    world.sync()
    world.flux_applies()
    world.advance(minutes=1)
    healthy(world)
    world.sync()
    assert world.bake == "InProgress", world.history[0]
    world.advance(minutes=31)
    world.sync()
    assert world.bake == "Succeeded"


def applied(world: World) -> None:
    """The persisted decision is patched, Flux applies it and the checks report fresh health;
    each change triggers a sync at once (they are related objects)."""
    world.sync()
    world.flux_applies()
    world.sync()
    healthy(world)
    world.sync()


def running(*releases: str, **spec: object) -> World:
    """A Rollout with checks that baked each release in turn (one OCIRepository target)."""
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **CHECKED, **spec})
    world.ran(releases[0])
    world.ocirepo("manifests", tag=releases[0])
    healthy(world)
    world.release(releases[0])
    world.sync()
    for tag in releases[1:]:
        world.advance(hours=2)
        world.release(tag)
        world.sync()
        assert world.deployed == tag
        bake_through(world)
    return world


def fail_bake(world: World) -> None:
    world.advance(minutes=2)
    world.check("smoke", "Unhealthy", changed=world.now, error=world.now, message="5xx above 1%")
    world.sync()


def deploy_and_fail(world: World, tag: str) -> None:
    world.advance(hours=1)
    world.release(tag)
    world.sync()
    assert world.deployed == tag
    world.sync()
    world.flux_applies()
    fail_bake(world)
    assert next(h["bakeStatus"] for h in world.history if h["version"]["tag"] == tag) == "Failed"


# --- rollbacks hold -------------------------------------------------------------------------


def test_rollback_by_force_deploy_after_a_failed_bake_stays_until_a_later_release():
    world = running("1.0.0")
    deploy_and_fail(world, "1.1.0")
    assert world.condition("DeploymentBlocked") == ("True", "BakeFailed")
    assert world.condition("Stalled") == ("True", "BakeFailed")

    world.annotations = {FORCE: "1.0.0", MESSAGE: "back to 1.0.0 for INC-7", USER: "alice"}
    world.sync()
    assert tags(world)[:2] == ["1.0.0", "1.1.0"]
    head = world.history[0]
    assert (head["trigger"], head["message"], head["triggeredBy"]) == (
        "ForceDeploy",
        "back to 1.0.0 for INC-7",
        {"kind": "User", "name": "alice"},
    )
    hold = world.status["hold"]
    assert (hold["reason"], hold["resumeAfter"], hold["historyId"]) == ("ManualRollback", "1.1.0", head["id"])
    assert world.actuator.sent == [], "write-ahead: nothing is patched before the decision is persisted"
    applied(world)
    assert world.ocirepos["manifests"]["spec"]["ref"]["tag"] == "1.0.0", "the forced version reaches Flux"
    for _ in range(12):  # a day and a half: the bake ends, 1.1.0 is never redeployed
        world.advance(hours=3)
        world.sync()
        assert world.deployed == "1.0.0"
    assert world.bake == "Succeeded"
    assert world.condition("DeploymentBlocked") == ("True", "Held")
    assert "after 1.1.0" in world.message("DeploymentBlocked")
    assert world.status["releaseCandidates"] == ["1.1.0"]  # reported, but held

    world.release("1.2.0")  # a release later than everything known at rollback time
    world.sync()
    assert world.deployed == "1.2.0" and triggers(world)[0] == "Automatic"
    assert "hold" not in world.status


def test_rollback_from_a_good_release_stays():
    world = running("1.0.0", "1.1.0")
    world.annotations = {FORCE: "1.0.0"}
    world.sync()
    assert world.deployed == "1.0.0" and world.status["hold"]["resumeAfter"] == "1.1.0"
    applied(world)
    for _ in range(8):
        world.advance(hours=6)
        world.sync()
    assert world.deployed == "1.0.0" and world.bake == "Succeeded"
    assert tags(world)[:3] == ["1.0.0", "1.1.0", "1.0.0"]


def test_force_deploy_without_bake_reaches_flux_before_anything_else():
    world = World()
    world.ran("1.0.0")
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.1.0")
    world.sync()
    world.sync()
    world.flux_applies()
    world.sync()
    assert world.deployed == "1.1.0" and world.bake == "Succeeded"
    world.release("1.2.0")
    world.annotations = {FORCE: "1.0.0"}
    world.sync()
    # the manual deploy ends the sync's deploys: no automatic 1.2.0 on top of it
    assert tags(world)[:2] == ["1.0.0", "1.1.0"]
    assert world.history[0]["bakeStatus"] == "Deploying"
    assert world.history[0]["bakeStatusMessage"] == "Waiting for Flux to apply the version."
    world.sync()
    world.flux_applies()
    assert world.ocirepos["manifests"]["spec"]["ref"]["tag"] == "1.0.0"
    world.sync()
    assert world.bake == "Succeeded" and world.history[0]["bakeStatusMessage"] == "No bake configured."
    # 1.2.0 was known at rollback time (it is the best release): held
    assert world.deployed == "1.0.0" and world.status["hold"]["resumeAfter"] == "1.2.0"


def test_pin_unpin_hold_and_a_new_release_lifts_the_hold():
    world = running("1.0.0", "1.1.0", "1.2.0")
    world.spec["wantedVersion"] = "1.0.0"
    world.sync()
    assert world.deployed == "1.0.0" and triggers(world)[0] == "Pin"
    assert world.condition("DeploymentBlocked") == ("False", "ManualDeployment")
    applied(world)
    world.advance(days=1)
    world.sync()
    del world.spec["wantedVersion"]  # unpinning does not lift the hold
    world.advance(hours=1)
    world.sync()
    assert world.deployed == "1.0.0"
    assert world.condition("DeploymentBlocked") == ("True", "Held")
    assert world.status["releaseCandidates"] == ["1.2.0", "1.1.0"]
    assert world.status["hold"]["resumeAfter"] == "1.2.0"
    world.advance(days=2)
    world.release("1.3.0")
    world.sync()
    assert world.deployed == "1.3.0" and "hold" not in world.status
    pin = world.history[1]
    assert world.history[0]["clearedHold"] == pin["id"]  # "deployment N cleared the hold"
    assert all("clearedHold" not in e for e in world.history[1:])


def test_bypass_gates_passes_a_hold_for_its_release_and_a_deploy_of_resume_after_clears_it():
    world = running("1.0.0", "1.1.0")
    world.annotations = {FORCE: "1.0.0"}
    world.sync()
    applied(world)
    world.advance(hours=1)
    world.sync()
    assert world.bake == "Succeeded" and world.status["hold"]["resumeAfter"] == "1.1.0"
    world.annotations[BYPASS] = "1.1.0"
    world.sync()
    assert world.deployed == "1.1.0" and "with gate bypass" in world.history[0]["message"]
    assert "hold" not in world.status  # a deploy of resumeAfter clears the hold
    assert world.history[0]["clearedHold"] == world.history[1]["id"]


# --- automatic rollback (spec.onBakeFailure: Rollback) ----------------------------------------


def test_automatic_rollback_holds_and_a_failed_rollback_does_not_cascade():
    world = running("1.0.0", "1.1.0", onBakeFailure="Rollback")
    deploy_and_fail(world, "1.2.0")
    failed, rollback = world.history[1], world.history[0]
    assert failed["bakeStatus"] == "Failed" and failed["version"]["tag"] == "1.2.0"
    assert (rollback["version"]["tag"], rollback["trigger"], rollback["rollbackOf"]) == (
        "1.1.0",
        "Rollback",
        failed["id"],
    )
    assert (
        rollback["message"]
        == "Automatic rollback from 1.2.0: A HealthCheck reported an error after deployment."
    )
    assert rollback["triggeredBy"] == {"kind": "System", "name": "rollout-controller"}
    assert world.status["hold"]["reason"] == "AutomaticRollback"
    assert world.status["hold"]["resumeAfter"] == "1.2.0"
    assert world.condition("BakeFailureDisabled") == ("True", "PreviousBakeFailed")
    world.sync()
    assert world.actuator.sent and world.actuator.sent[0].ops[-1]["value"] == "1.1.0"
    world.flux_applies()
    # the rollback's own bake fails: it stops there
    world.advance(minutes=5)
    world.sync()
    world.advance(minutes=1)
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    assert world.bake == "InProgress"
    fail_bake(world)
    assert world.bake == "Failed" and tags(world)[:3] == ["1.1.0", "1.2.0", "1.1.0"]
    assert world.condition("Ready") == ("False", "RollbackFailed")
    assert world.condition("Stalled") == ("True", "RollbackFailed")
    for _ in range(4):
        world.advance(hours=6)
        world.sync()
    assert len(world.history) == 4, "no cascade"


def test_automatic_rollback_never_answers_an_old_failure_nor_a_manual_deploy():
    world = running("1.0.0", "1.1.0")
    deploy_and_fail(world, "1.2.0")
    world.spec["onBakeFailure"] = "Rollback"  # turned on after the failure was recorded
    for _ in range(3):
        world.advance(hours=1)
        world.sync()
    assert world.deployed == "1.2.0" and world.bake == "Failed" and len(world.history) == 3

    world.annotations = {FORCE: "1.0.0"}  # an operator's deploy whose bake fails is not rolled back
    world.sync()
    applied(world)
    assert world.bake == "InProgress"
    fail_bake(world)
    assert world.deployed == "1.0.0" and world.bake == "Failed" and triggers(world)[0] == "ForceDeploy"
    assert world.condition("Ready") == ("False", "BakeFailed")


def test_automatic_rollback_without_an_earlier_success_says_so():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **CHECKED, "onBakeFailure": "Rollback"})
    healthy(world)
    world.release("1.0.0")
    world.sync()
    fail_bake(world)
    assert world.bake == "Failed" and len(world.history) == 1
    assert world.condition("Ready") == ("False", "BakeFailed")
    assert "no earlier successful deployment to roll back to" in world.message("Ready")


def test_suspend_stops_automatic_deploys_and_the_automatic_rollback():
    world = running("1.0.0", "1.1.0", onBakeFailure="Rollback")
    world.spec["suspend"] = True
    world.release("1.2.0")
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.condition("DeploymentBlocked") == ("True", "Suspended")
    world.annotations = {FORCE: "1.2.0"}  # manual deploys go on
    world.sync()
    world.sync()
    world.flux_applies()
    fail_bake(world)
    assert world.deployed == "1.2.0" and world.bake == "Failed"


def test_dry_run_applies_no_automatic_rollback():
    world = running("1.0.0", "1.1.0", onBakeFailure="Rollback")
    world.actuator.mode = "dry-run"
    world.release("1.2.0")
    world.advance(hours=1)
    world.sync()
    world.sync()
    fail_bake(world)
    assert world.deployed == "1.2.0" and world.bake == "Failed" and "hold" not in world.status


# --- tokens -----------------------------------------------------------------------------------


def test_a_gitops_kept_force_deploy_reapplied_ten_times_acts_once():
    world = running("1.0.0", "1.1.0")
    world.annotations = {FORCE: "1.0.0"}
    world.sync()
    assert tags(world)[:2] == ["1.0.0", "1.1.0"]
    applied(world)
    for _ in range(10):  # Flux re-applies the manifest every 10 minutes; nothing removes it
        world.advance(minutes=10)
        world.sync()
        assert world.status["acknowledgedAnnotations"] == {FORCE: "1.0.0"}
    assert tags(world)[:3] == ["1.0.0", "1.1.0", "1.0.0"]
    assert not [p for p in world.actuator.sent if p.kind == "Rollout"]
    world.annotations = {FORCE: "1.1.0@2"}  # a nonce makes a new request
    world.sync()
    assert world.deployed == "1.1.0"


def test_annotations_found_with_an_empty_history_are_acknowledged_without_acting():
    world = World()
    world.annotations = {FORCE: "1.0.0", RETRY: "x", MESSAGE: "old"}
    world.release("1.0.0")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0" and world.history[0]["message"] == "Automatic deployment"
    assert world.status["acknowledgedAnnotations"] == {FORCE: "1.0.0", MESSAGE: "old", RETRY: "x"}


def test_long_values_are_acknowledged_by_digest():
    world = running("1.0.0")
    world.annotations = {RETRY: "r" * 2000}
    world.sync()
    [(key, value)] = world.status["acknowledgedAnnotations"].items()
    assert key == RETRY and value.startswith("sha256:") and len(value) == 71


def test_deploy_message_describes_only_the_manual_deploy_of_the_same_change():
    world = running("1.0.0", "1.1.0")
    world.annotations = {MESSAGE: "planned maintenance", USER: "bob"}
    world.sync()
    assert world.status["acknowledgedAnnotations"] == {MESSAGE: "planned maintenance", USER: "bob"}
    world.advance(days=14)
    world.annotations[FORCE] = "1.0.0"  # weeks later, without a new message
    world.sync()
    assert world.history[0]["message"] == "Manual deployment, with force deploy"
    assert world.history[0]["triggeredBy"] == {"kind": "System", "name": "rollout-controller"}


def test_each_waiting_request_waits_and_is_named():
    world = running("1.0.0")
    world.spec["bakeTime"] = "30m"
    # bypass-gates of a tag not known yet
    world.gate("freeze", passing=False)
    world.annotations = {BYPASS: "1.1.0"}
    world.sync()
    assert BYPASS not in world.status["acknowledgedAnnotations"]
    assert "bypass-gates 1.1.0 waits: not a known release" in world.message("Ready")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0" and world.status["acknowledgedAnnotations"][BYPASS] == "1.1.0"
    # unblock-failed set during a bake waits for that bake's outcome
    world.annotations[UNBLOCK] = "True"
    world.sync()
    assert UNBLOCK not in world.status["acknowledgedAnnotations"]
    assert "unblock-failed waits for the bake of 1.1.0" in world.message("Ready")
    world.sync()
    world.flux_applies()
    fail_bake(world)
    assert world.bake == "Failed"
    world.gate("freeze", passing=True)
    world.release("1.2.0")
    world.sync()
    assert world.deployed == "1.2.0" and "with failed bake unblock" in world.history[0]["message"]
    # force-deploy while pinned waits, and so does an unknown (or invalid) tag
    world.spec["wantedVersion"] = "1.2.0"
    world.annotations = {FORCE: "1.0.0"}
    world.sync()
    assert "force-deploy 1.0.0 waits: spec.wantedVersion is set" in world.message("Ready")
    assert FORCE not in world.status["acknowledgedAnnotations"]
    del world.spec["wantedVersion"]
    world.annotations = {FORCE: "9.9.9"}
    world.sync()
    assert world.condition("Ready") == ("False", "ForceDeployVersionUnknown")
    world.annotations = {FORCE: "not a tag\n"}
    world.sync()
    assert world.condition("Ready") == ("False", "ForceDeployVersionUnknown")
    assert world.deployed == "1.2.0"


# --- adoption, health, ordering ----------------------------------------------------------------


def test_a_wiped_status_adopts_instead_of_deploying_through_a_freeze():
    world = running("1.0.0", "1.1.0")
    world.release("1.2.0")
    world.gate("freeze", passing=False)
    world.sync()
    assert world.deployed == "1.1.0"
    world.status = {}  # kubectl edit, a restore, a new Rollout in front of the running app
    world.sync()
    [entry] = world.history
    assert (entry["version"]["tag"], entry["trigger"], entry["adopted"]) == ("1.1.0", "Adoption", True)
    assert entry["message"] == "Adopted: the targets already carry 1.1.0"
    assert world.actuator.sent == []
    world.advance(minutes=1)
    healthy(world)
    world.sync()
    world.advance(minutes=31)
    world.sync()
    assert world.bake == "Succeeded" and world.deployed == "1.1.0"
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")
    world.gate("freeze", passing=True)
    world.sync()
    assert world.deployed == "1.2.0" and triggers(world) == ["Automatic", "Adoption"]


def test_zero_selected_checks_never_bake_green():
    world = running("1.0.0")
    world.release("1.1.0")
    world.advance(hours=1)
    world.sync()
    world.sync()
    world.flux_applies()
    world.checks.clear()  # the release deleted its own HealthCheck
    world.advance(minutes=5)
    world.sync()
    assert world.bake == "Deploying"
    assert world.history[0]["bakeStatusMessage"] == "healthCheckSelector selects no HealthCheck"
    world.advance(hours=1)
    world.sync()
    assert world.bake == "Failed"


def test_withdrawn_and_older_builds_are_not_deployed():
    world = World(
        semver_policy=False,
        policy_spec={
            "policy": {"numerical": {"order": "asc"}},
            "filterTags": {"pattern": r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
        },
    )
    world.release("main-aaa111-1700000300")
    world.sync()
    world.release("main-bbb222-1700000100")  # an older build seen for the first time
    world.sync()
    assert world.deployed == "main-aaa111-1700000300"
    world.release("main-ccc333-1700000500")
    world.release("feature-x")  # the filter does not match: recorded, never a candidate
    world.sync()
    assert world.deployed == "main-aaa111-1700000300"
    assert world.status["releaseCandidates"] == []
    world.release("main-ccc333-1700000500")
    world.sync()
    assert world.deployed == "main-ccc333-1700000500"
    # narrowing the policy: the ImagePolicy now announces an earlier release; a later one is withdrawn
    world.spec["wantedVersion"] = "main-aaa111-1700000300"
    world.sync()
    world.release("main-ddd444-1700000700")  # announced while pinned
    world.sync()
    world.release("main-bbb222-1700000100")  # the policy was narrowed: ddd444 is withdrawn
    world.sync()
    del world.spec["wantedVersion"]
    world.sync()
    assert world.deployed == "main-aaa111-1700000300"
    assert "main-ddd444-1700000700" not in world.status["releaseCandidates"]
    assert world.status["hold"]["resumeAfter"] == "main-ccc333-1700000500"


def test_unsupported_filter_gives_no_automatic_candidates():
    world = World(policy_spec={"filterTags": {"pattern": r"^\p{L}+-[0-9]+$"}})
    world.release("1.0.0")
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "UnsupportedFilter")
    assert world.history == []


def test_image_policy_failure_and_a_re_pushed_tag_are_reported():
    world = running("1.0.0")
    world.release("1.0.0", digest="sha256:" + "a" * 64)
    world.status["availableReleases"][0]["digest"] = "sha256:" + "b" * 64
    world.sync()
    assert f"tag 1.0.0 was re-pushed: digest sha256:{'b' * 64} -> sha256:{'a' * 64}" in world.message(
        "ReleasesUpdated"
    )
    assert world.status["availableReleases"][0]["digest"] == "sha256:" + "b" * 64
    world.policy["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ReconciliationFailed",
            "message": "unable to determine latest version from provided list",
            "lastTransitionTime": ts(world.now),
            "observedGeneration": 1,
        }
    ]
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "ImagePolicyNotReady")
    assert world.message("ReleasesUpdated").startswith("ReconciliationFailed: unable to determine")


def test_explain_names_the_rule_that_keeps_each_candidate_out():
    world = running("1.0.0")
    world.gate("freeze", passing=False)
    world.release("1.1.0")
    world.sync()
    body = world.request()
    ev = evaluate(parse_request(body), world.now, ask="0.9.0")
    assert ev.explain == {
        "1.1.0": "gated: gate 'freeze' is not passing",
        "0.9.0": "unknown: not a known release",
    }
    world.gate("freeze", passing=True)
    world.check("smoke", "Unhealthy", changed=world.now, message="p99")
    ev = evaluate(parse_request(world.request()), world.now)
    assert ev.explain == {"1.1.0": "unhealthy: HealthCheck 'smoke' in namespace 'shop' is not healthy: p99"}


# --- clocks, limits, upgrades ----------------------------------------------------------------


def test_a_slow_replica_clock_never_dates_backwards():
    world = running("1.0.0")
    world.release("1.1.0")
    world.sync()
    deployed_at = world.history[0]["timestamp"]
    world.now -= timedelta(minutes=3)  # the next sync lands on a replica three minutes behind
    world.sync()
    world.flux_applies()
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    head = world.history[0]
    assert head["bakeStatus"] in ("Deploying", "InProgress")
    if head["bakeStatus"] == "InProgress":
        assert head["bakeStartTime"] >= deployed_at
    world.release("1.2.0")
    world.annotations = {FORCE: "1.2.0"}
    world.sync()
    assert world.history[0]["timestamp"] >= deployed_at
    assert world.history[1]["bakeEndTime"] >= deployed_at


def test_bake_start_is_never_before_the_cutoff():
    world = running("1.0.0")
    world.release("1.1.0")
    world.advance(hours=1)
    world.sync()
    world.sync()
    world.flux_applies()
    world.check("smoke", "Healthy", changed=world.now + timedelta(minutes=1))
    world.status["history"][0]["lastRetryTimestamp"] = ts(world.now + timedelta(seconds=30))
    world.sync()
    assert world.history[0]["bakeStartTime"] == ts(world.now + timedelta(seconds=30))


def test_lowering_the_history_limit_takes_effect_at_once():
    world = running("1.0.0", "1.1.0", "1.2.0", "1.3.0")
    assert len(world.history) == 4
    world.spec["versionHistoryLimit"] = 2
    world.sync()
    assert tags(world) == ["1.3.0", "1.2.0"]
    world.release("1.4.0")
    world.sync()
    assert [h["id"] for h in world.history] == [5, 4]


def test_an_upgrade_from_the_go_controllers_status_keeps_every_release():
    old = [{"tag": f"0.{i}.0", "digest": f"sha256:{i:064x}"} for i in range(60)]  # no discoveredAt
    go_history = [
        {
            "id": 3,
            "version": {"tag": "0.59.0"},
            "timestamp": ts(T0 - timedelta(days=3)),
            "message": "Automatic deployment",
            "bakeStatus": "Succeeded",
        },
        {
            "id": 2,
            "version": {"tag": "0.58.0"},
            "timestamp": ts(T0 - timedelta(days=4)),
            "message": "Rollback for INC-3",
            "bakeStatus": "Succeeded",
        },
        {
            "id": 1,
            "version": {"tag": "0.50.0"},
            "timestamp": ts(T0 - timedelta(days=9)),
            "message": "Adopted by hand",
            "bakeStatus": "Succeeded",
        },
    ]
    world = World()
    world.status = {"availableReleases": old, "history": go_history}
    world.release("0.59.0")
    world.sync()
    releases = world.status["availableReleases"]
    assert [r["tag"] for r in releases] == [r["tag"] for r in old], "every release is kept"
    assert all(r["discoveredAt"] == ts(T0) for r in releases)
    assert world.history == go_history, "entries an older controller wrote are kept as they were"
    world.advance(days=8)
    world.release("0.60.0")
    world.sync()
    # a week after the upgrade the ordinary bound applies: 30 newest, and everything since 0.50.0
    assert world.deployed == "0.60.0" and len(world.status["availableReleases"]) == 30


def test_invalid_wanted_version_is_invalid_spec_and_nothing_is_planned():
    world = running("1.0.0")
    before = dict(world.status)
    world.spec["wantedVersion"] = "1.0.0\nkind: Secret"
    world.sync()
    assert world.condition("Ready") == ("False", "InvalidSpec")
    assert world.condition("Stalled") == ("True", "InvalidSpec")
    assert world.actuator.sent == []
    assert world.status["history"] == before["history"]


def test_reconciling_reports_a_bake_in_progress():
    world = running("1.0.0")
    world.release("1.1.0")
    world.advance(hours=1)
    world.sync()
    assert world.condition("Reconciling") == ("True", "Progressing")
    assert world.message("Reconciling") == world.history[0]["bakeStatusMessage"]
    bake_through(world)
    assert world.condition("Reconciling") == ("False", "Succeeded")
    assert world.condition("Stalled") == ("False", "Normal")
    assert NS == "shop"


def test_a_force_deploy_supersedes_a_bypass_named_with_it_and_nothing_automatic_follows():
    # No targets and no bake: the forced version is Succeeded at once; the bypass set in the same
    # change is acknowledged (superseded), so the next sync does not deploy 1.1.0 (fixed point).
    world = World()
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        world.release(tag)
        world.sync()
    world.annotations = {FORCE: "1.0.0", BYPASS: "1.1.0"}
    world.sync()
    world.sync()
    assert tags(world)[:2] == ["1.0.0", "1.2.0"]
    assert world.status["acknowledgedAnnotations"] == {FORCE: "1.0.0", BYPASS: "1.1.0"}


def test_a_missing_image_policy_never_reorders_releases_by_discovery():
    world = World(semver_policy=False)  # an alphabetical rule
    world.release("build-b")
    world.sync()
    world.gate("freeze", passing=False)
    world.release("build-a")  # older in the declared order, seen later
    world.sync()
    world.gates.clear()
    world.policy = None  # deleted (or renamed) for a while: its rule is unknown
    world.sync()
    assert world.deployed == "build-b"
    assert world.condition("ReleasesUpdated") == ("False", "ImagePolicyNotFound")
    assert world.status["releaseCandidates"] == []
