"""Scenario tests: /rollout/sync driven step by step, each step carrying the persisted status.

Every `world.sync()` also checks the response shape, the CRD status schema and the fixed point.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.rollout_world import NS, T0, World, ts

BAKE = {"bakeTime": "10m", "deployTimeout": "30m", "healthCheckSelector": {"matchLabels": {"app": "app"}}}


def deployed_tags(world: World) -> list[str]:
    return [h["version"]["tag"] for h in world.history]


# --- discovery, first deploy, next release ------------------------------------------------


def test_first_deploy_records_release_and_history_entry():
    world = World()
    world.release("1.0.0", digest="sha256:aaa")
    world.sync()
    assert world.status["availableReleases"] == [
        {"tag": "1.0.0", "digest": "sha256:aaa", "discoveredAt": ts(T0)}
    ]
    entry = world.history[0]
    assert entry == {
        "id": 1,
        "version": {"tag": "1.0.0", "digest": "sha256:aaa", "discoveredAt": ts(T0)},
        "timestamp": ts(T0),
        "message": "Automatic deployment",
        "trigger": "Automatic",
        "triggeredBy": {"kind": "System", "name": "rollout-controller"},
        "bakeStatus": "Succeeded",
        "bakeStatusMessage": "No bake configured.",
        "bakeEndTime": ts(T0),
    }
    assert world.condition("Ready") == ("True", "Deployed")
    assert world.message("Ready") == "Release 1.0.0 deployed. No bake configured."
    assert world.condition("ReleasesUpdated") == ("True", "ReleasesUpdated")
    assert world.condition("TargetsSynced") == ("True", "NoTargets")
    assert world.condition("BakeFailureDisabled") == ("False", "Normal")
    assert world.status["releaseCandidates"] == []


def test_next_release_is_deployed_and_discovered_at_is_kept():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.advance(hours=1)
    world.release("1.1.0")
    world.sync()
    assert deployed_tags(world) == ["1.1.0", "1.0.0"]
    assert [h["id"] for h in world.history] == [2, 1]
    assert world.status["availableReleases"][0]["discoveredAt"] == ts(T0)
    assert world.status["availableReleases"][1]["discoveredAt"] == ts(T0.replace(hour=10))


def test_up_to_date_changes_nothing():
    world = World()
    world.release("1.0.0")
    before = world.sync()
    world.advance(minutes=30)
    after = world.sync()
    assert after == before
    assert world.last["resyncAfterSeconds"] == 300


def test_release_update_interval_sets_resync():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "releaseUpdateInterval": "90s"})
    world.release("1.0.0")
    world.sync()
    assert world.last["resyncAfterSeconds"] == 90


def test_history_limit_truncates_and_ids_never_repeat():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "versionHistoryLimit": 2})
    for minor in range(5):
        world.release(f"1.{minor}.0")
        world.sync()
        world.advance(minutes=1)
    assert deployed_tags(world) == ["1.4.0", "1.3.0"]
    assert [h["id"] for h in world.history] == [5, 4]


def test_missing_image_policy_keeps_working_with_known_releases():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.policy = None
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "ImagePolicyNotFound")
    assert world.deployed == "1.0.0"
    assert len(world.status["availableReleases"]) == 1


def test_no_latest_ref_and_no_releases():
    world = World()
    world.release("1.0.0")
    del world.policy["status"]
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "NoLatestRef")
    assert world.condition("Ready") == ("False", "NoReleasesAvailable")
    assert world.history == []


def test_legacy_latest_image_is_not_read():
    # Revised: only image.toolkit.fluxcd.io/v1 is requested (customize), whose status has latestRef;
    # the v1beta2 `latestImage` fallback could never be reached and was removed.
    world = World()
    world.release("1.0.0")
    world.policy["status"] = {"latestImage": "registry:5000/acme/app:2.0.0"}
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "NoLatestRef")
    assert world.history == []


# --- ordering -----------------------------------------------------------------------------


def test_semver_order_never_downgrades_automatically():
    world = World()
    world.release("1.2.0")
    world.sync()
    world.release("1.1.9")  # announced later, lower in semver order
    world.sync()
    assert world.deployed == "1.2.0"
    assert [r["tag"] for r in world.status["availableReleases"]] == ["1.2.0", "1.1.9"]
    assert world.status["releaseCandidates"] == []


def test_prereleases_rank_before_their_release_and_v_prefix_is_semver():
    world = World(policy_spec={"policy": {}})  # no rule that says otherwise: semver, as every tag parses
    for tag in ("v1.0.0-rc.1", "v1.0.0-rc.10", "v1.0.0-rc.2"):
        world.release(tag)
        world.sync()
    # rc.10 > rc.2 numerically, so rc.2 (announced last) is not deployed
    assert world.deployed == "v1.0.0-rc.10"
    world.release("v1.0.0")
    world.sync()
    assert world.deployed == "v1.0.0"


def test_discovery_order_when_tags_are_not_semver_and_no_rule_orders_them():
    world = World(policy_spec={"policy": {}})
    world.release("main-abc")
    world.sync()
    world.release("main-0a1")
    world.sync()
    assert world.deployed == "main-0a1"
    assert world.status["releaseCandidates"] == []


def test_alphabetical_policy_orders_tags_an_older_build_seen_later_is_not_deployed():
    # Revised §3.3: an ImagePolicy with an alphabetical rule orders by tag, not by discovery.
    world = World(semver_policy=False)
    world.release("main-abc")
    world.sync()
    world.release("main-0a1")  # alphabetically before main-abc: older, recorded, never deployed
    world.sync()
    assert world.deployed == "main-abc"
    assert world.status["releaseCandidates"] == []


def test_candidates_are_best_first_and_gated_by_bake():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE})
    world.release("1.0.0")
    world.sync()  # Deploying: the next releases wait
    for tag in ("1.0.1", "1.1.0"):
        world.release(tag)
        world.sync()
    assert world.deployed == "1.0.0"
    assert world.status["releaseCandidates"] == ["1.1.0", "1.0.1"]
    assert world.status["gatedReleaseCandidates"] == ["1.1.0", "1.0.1"]


# --- manual deploys -----------------------------------------------------------------------


def test_pin_any_tag_then_unpin():
    world = World()
    world.release("2.0.0")
    world.sync()
    world.spec["wantedVersion"] = "1.5.0-hotfix"  # not a known release
    world.sync()
    assert world.deployed == "1.5.0-hotfix"
    assert world.history[0]["version"] == {"tag": "1.5.0-hotfix"}
    assert world.history[0]["message"] == "Manual deployment"
    assert world.condition("DeploymentBlocked") == ("False", "ManualDeployment")
    world.release("2.1.0")
    world.sync()
    assert world.deployed == "1.5.0-hotfix", "the pin holds"
    del world.spec["wantedVersion"]
    world.sync()
    assert world.deployed == "2.1.0"


def test_pin_with_custom_message_and_user_is_acknowledged():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.annotations = {
        "rollout.kuberik.com/deploy-message": "Roll back for INC-42",
        "rollout.kuberik.com/deploy-user": "alice",
    }
    world.spec["wantedVersion"] = "0.9.0"
    world.sync()
    entry = world.history[0]
    assert entry["message"] == "Roll back for INC-42"
    assert entry["triggeredBy"] == {"kind": "User", "name": "alice"}
    assert world.status["acknowledgedAnnotations"] == world.annotations
    # the next manual deploy does not reuse the acknowledged message
    world.spec["wantedVersion"] = "0.9.1"
    world.sync()
    assert world.history[0]["message"] == "Manual deployment"
    assert world.history[0]["triggeredBy"]["kind"] == "System"


def test_force_deploy_known_tag_once():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    world.release("1.0.0")
    world.sync()
    world.release("1.1.0")
    world.sync()  # InProgress bake of 1.0.0 blocks the automatic deploy of 1.1.0
    assert world.deployed == "1.0.0" and world.bake == "InProgress"
    world.annotations = {"rollout.kuberik.com/force-deploy": "1.1.0"}
    world.sync()
    assert deployed_tags(world) == ["1.1.0", "1.0.0"]
    assert world.history[0]["message"] == "Manual deployment, with force deploy"
    assert world.history[1]["bakeStatus"] == "Cancelled"
    assert world.history[1]["bakeStatusMessage"] == "Bake cancelled due to new deployment."
    assert world.history[1]["bakeEndTime"] == ts(world.now)
    assert world.status["acknowledgedAnnotations"] == {"rollout.kuberik.com/force-deploy": "1.1.0"}
    # acknowledged: a later sync does not deploy it again
    world.advance(minutes=20)
    world.sync()
    assert deployed_tags(world) == ["1.1.0", "1.0.0"]
    # the annotation disappears (removed by the actuator) and the acknowledgement goes with it
    world.annotations = {}
    world.sync()
    assert world.status["acknowledgedAnnotations"] == {}


def test_force_deploy_unknown_tag_waits_without_acknowledging():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.annotations = {"rollout.kuberik.com/force-deploy": "9.9.9"}
    world.release("1.1.0")
    world.sync()
    assert world.condition("Ready") == ("False", "ForceDeployVersionUnknown")
    assert world.deployed == "1.0.0", "nothing deployed while the forced tag is unknown"
    assert world.status["acknowledgedAnnotations"] == {}
    world.release("9.9.9")
    world.sync()
    assert world.deployed == "9.9.9"
    assert world.condition("Ready") == ("True", "Deployed")


# --- gates --------------------------------------------------------------------------------


def test_gate_allowed_versions_intersect():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.gate("a", allowed=["1.1.0", "1.2.0"])
    world.gate("b", allowed=["1.1.0"])
    for tag in ("1.1.0", "1.2.0"):
        world.release(tag)
    world.status["availableReleases"].append({"tag": "1.1.0", "discoveredAt": ts(T0)})
    world.sync()
    assert world.deployed == "1.1.0", "the best release both gates allow"
    # 1.2.0 is still a candidate, but gate b does not allow it
    assert world.status["releaseCandidates"] == ["1.2.0"]
    assert world.status["gatedReleaseCandidates"] == []
    assert world.condition("GatesPassing") == ("False", "NoAllowedVersions")
    assert world.status["gates"][0]["message"] == "Gate is passing"
    assert world.status["gates"][1] == {
        "name": "b",
        "passing": True,
        "allowedVersions": ["1.1.0"],
        "message": "Gate does not allow any release candidate",
        "bypassGates": False,
    }


def test_failing_gate_blocks_and_up_to_date_does_not_report_it():
    world = World()
    world.release("1.0.0")
    world.gate("freeze", passing=False)
    world.sync()  # first deploy: failing gates do not block
    assert world.deployed == "1.0.0"
    assert world.condition("GatesPassing") == ("True", "AllGatesPassing")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.0.0"
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")
    assert world.status["gates"] == [
        {"name": "freeze", "passing": False, "message": "Gate is not passing", "bypassGates": False}
    ]
    world.gate("freeze", passing=True)
    world.sync()
    assert world.deployed == "1.1.0"


def test_gates_allowing_nothing():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.gate("only-2", allowed=["2.0.0"])
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.0.0"
    assert world.condition("GatesPassing") == ("False", "NoAllowedVersions")
    assert world.status["gatedReleaseCandidates"] == []


def test_first_deploy_uses_allowed_versions_unless_they_leave_nothing():
    world = World()
    world.status = {"availableReleases": [{"tag": "1.0.0", "discoveredAt": ts(T0)}]}
    world.release("1.1.0")
    world.gate("g", allowed=["1.0.0"])
    world.sync()
    assert world.deployed == "1.0.0"
    other = World()
    other.release("1.1.0")
    other.gate("g", allowed=["3.0.0"])
    other.sync()
    assert other.deployed == "1.1.0"


def test_legacy_gate_status_fields_are_read():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.gate("legacy", passing=None)
    world.gates["legacy"]["status"] = {"passing": False}
    world.release("1.1.0")
    world.sync()
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")


def test_other_rollouts_gates_are_ignored():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.gate("theirs", passing=False, rollout="other")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.status["gates"] == []


def test_bypass_gates_deploys_that_candidate_once():
    world = World()
    world.release("1.0.0")
    world.sync()
    world.gate("freeze", passing=False)
    world.release("1.1.0")
    world.sync()
    world.release("1.2.0")
    world.annotations = {"rollout.kuberik.com/bypass-gates": "1.1.0"}
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.history[0]["message"] == "Automatic deployment, with gate bypass"
    assert world.status["acknowledgedAnnotations"] == {"rollout.kuberik.com/bypass-gates": "1.1.0"}
    # evaluated after the acknowledgement: gates describe themselves without the bypass
    assert world.status["gates"][0]["bypassGates"] is False
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")


def test_bypass_reports_bypassed_gates_while_waiting():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    world.release("1.0.0")
    world.sync()
    world.gate("freeze", passing=False)
    world.release("1.1.0")
    world.annotations = {"rollout.kuberik.com/bypass-gates": "1.1.0"}
    world.sync()  # the bake of 1.0.0 is in progress: the bypass waits
    assert world.condition("GatesPassing") == ("True", "GatesBypassed")
    assert world.status["gates"][0]["message"] == "Gate bypassed for version 1.1.0"
    assert world.status["gatedReleaseCandidates"] == ["1.1.0"]
    world.advance(minutes=10)
    world.sync()
    assert world.deployed == "1.1.0"


# --- bake ---------------------------------------------------------------------------------


def baking_world() -> World:
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE})
    world.check("smoke", "Healthy", changed=T0 - timedelta(hours=1))
    world.release("1.0.0")
    world.sync()
    return world


def test_bake_waits_for_fresh_health_then_succeeds():
    world = baking_world()
    assert world.bake == "Deploying"
    assert world.message("Ready").endswith(
        "Waiting for health checks to become healthy before starting bake."
    )
    assert world.last["resyncAfterSeconds"] == 300  # earlier than the deploy timeout (30m + 1s)
    world.advance(minutes=2)
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    assert world.bake == "InProgress"
    assert world.history[0]["bakeStartTime"] == ts(world.now)
    assert world.last["resyncAfterSeconds"] == 300
    world.advance(minutes=9)
    world.sync()
    assert world.bake == "InProgress"
    assert world.last["resyncAfterSeconds"] == 60, "wakes up when the bake is due"
    world.advance(minutes=1)
    world.sync()
    assert world.bake == "Succeeded"
    assert world.history[0]["bakeStatusMessage"] == "Bake completed successfully."
    assert world.condition("Ready") == ("True", "BakeSucceeded")


def test_bake_fails_on_error_at_the_cutoff():
    world = baking_world()
    world.check("smoke", "Unhealthy", error=T0, message="5xx rate 12%")
    world.sync()
    assert world.bake == "Failed"
    entry = world.history[0]
    assert entry["bakeStatusMessage"] == "A HealthCheck reported an error after deployment."
    assert entry["failedHealthChecks"] == [{"name": "smoke", "namespace": NS, "message": "5xx rate 12%"}]
    assert world.condition("Ready") == ("False", "BakeFailed")
    # a failed bake stops automatic deployments
    world.release("1.1.0")
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    assert world.deployed == "1.0.0"


def test_old_errors_are_ignored():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE})
    world.check("smoke", "Healthy", changed=T0, error=T0 - timedelta(seconds=1))
    world.release("1.0.0")
    world.sync()
    assert world.bake == "InProgress"


def test_error_after_bake_started():
    world = baking_world()
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    world.advance(minutes=3)
    world.check("smoke", "Unhealthy", changed=world.now, error=world.now)
    world.sync()
    assert world.bake == "Failed"
    assert world.history[0]["bakeStatusMessage"] == "A HealthCheck reported an error after bake started."


def test_deploy_timeout_fails_with_waiting_checks():
    world = baking_world()
    world.advance(minutes=30)
    world.sync()
    assert world.bake == "Deploying", "timeout needs now > cutoff + deployTimeout"
    assert world.last["resyncAfterSeconds"] == 1
    world.advance(seconds=1)
    world.sync()
    assert world.bake == "Failed"
    assert world.history[0]["bakeStatusMessage"].startswith("Deploy timeout reached before bake could start")
    assert world.history[0]["failedHealthChecks"] == [
        {
            "name": "smoke",
            "namespace": NS,
            "message": "HealthCheck has not reported healthy since the deployment",
        }
    ]


def test_zero_checks_bake_starts_and_finishes_in_one_sync_without_bake_time():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "deployTimeout": "5m"})
    world.release("1.0.0")
    world.sync()
    assert world.bake == "Succeeded"
    assert world.history[0]["bakeStartTime"] == world.history[0]["bakeEndTime"] == ts(T0)


def test_finish_then_deploy_next_in_one_sync():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    world.release("1.0.0")
    world.sync()
    world.release("1.1.0")
    world.advance(minutes=10)
    world.sync()
    assert deployed_tags(world) == ["1.1.0", "1.0.0"]
    assert world.history[1]["bakeStatus"] == "Succeeded"
    assert world.bake == "InProgress"


def test_bake_waits_for_targets_to_carry_the_version():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    world.ran("0.9.0")
    world.ocirepo("manifests", tag="0.9.0")
    world.release("1.0.0")
    world.sync()
    assert world.bake == "Deploying"
    assert world.condition("TargetsSynced") == ("False", "TargetsPending")
    world.sync()  # the decision is persisted: now the patch goes out
    world.flux_applies()
    world.sync()
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    assert world.bake == "InProgress"


# --- health -------------------------------------------------------------------------------


def test_unhealthy_checks_block_automatic_deploys():
    world = baking_world()
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    world.advance(minutes=10)
    world.sync()
    assert world.bake == "Succeeded"
    world.advance(minutes=1)
    world.check("smoke", "Unhealthy", changed=world.now, message="p99 latency high")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.0.0"
    assert world.condition("DeploymentBlocked") == ("True", "UnhealthyHealthChecks")
    assert world.message("DeploymentBlocked") == (
        "HealthCheck 'smoke' in namespace 'shop' is not healthy: p99 latency high"
    )


def test_health_selector_with_namespace_selector():
    world = World(
        spec={
            "releasesImagePolicy": {"name": "app"},
            "healthCheckSelector": {
                "selector": {"matchLabels": {"app": "app"}},
                "namespaceSelector": {"matchLabels": {"team": "shop"}},
            },
        }
    )
    world.extra_related = {
        "Namespace.v1": {
            "shop": {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "shop", "labels": {"team": "shop"}},
            },
            "edge": {
                "apiVersion": "v1",
                "kind": "Namespace",
                # edge opted in to being read by Rollouts of other namespaces (docs/tenancy.md)
                "metadata": {
                    "name": "edge",
                    "labels": {"team": "shop", "rollout.kuberik.com/shared-health-checks": "true"},
                },
            },
            "other": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
        }
    }
    world.check("edge-probe", "Healthy", namespace="edge", changed=world.now)
    world.release("1.0.0")
    world.sync()
    assert world.bake == "Succeeded"
    world.check("edge-probe", "Unhealthy", namespace="edge")
    world.check("unrelated", "Unhealthy", namespace="other")
    world.release("1.1.0")
    world.sync()
    assert world.message("DeploymentBlocked") == "HealthCheck 'edge-probe' in namespace 'edge' is not healthy"
    world.check("edge-probe", "Healthy", namespace="edge", changed=world.now)
    world.sync()
    assert world.deployed == "1.1.0"


def test_empty_selector_selects_no_checks_and_never_bakes_green():
    # Revised §3.7: a selector that selects nothing keeps the entry Deploying (a release that
    # deletes or relabels its own checks must not bake green); deployTimeout fails it.
    world = World(
        spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": {}, "deployTimeout": "15m"}
    )
    world.check("smoke", "Unhealthy")
    world.release("1.0.0")
    world.sync()
    assert world.bake == "Deploying"
    assert world.history[0]["bakeStatusMessage"] == "healthCheckSelector selects no HealthCheck"
    world.advance(minutes=16)
    world.sync()
    assert world.bake == "Failed"
    assert world.history[0]["bakeStatusMessage"] == (
        "Deploy timeout reached before bake could start: healthCheckSelector selects no HealthCheck"
    )


# --- retry, unblock, recovery -------------------------------------------------------------


def failed_world() -> World:
    world = baking_world()
    world.check("smoke", "Unhealthy", changed=world.now, error=world.now, message="boom")
    world.sync()
    assert world.bake == "Failed"
    return world


def test_retry_reruns_the_bake():
    world = failed_world()
    world.advance(minutes=5)
    world.check("smoke", "Healthy", changed=world.now - timedelta(minutes=1), error=T0)
    world.annotations = {"rollout.kuberik.com/retry": "1"}
    world.sync()
    entry = world.history[0]
    assert entry["bakeStatus"] == "Deploying"
    assert entry["lastRetryTimestamp"] == ts(world.now)
    assert "failedHealthChecks" not in entry and "bakeEndTime" not in entry
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    assert world.bake == "InProgress"
    # a second retry value on a non-failed entry is only acknowledged
    world.annotations = {"rollout.kuberik.com/retry": "2"}
    world.sync()
    assert world.bake == "InProgress"
    assert world.status["acknowledgedAnnotations"] == {"rollout.kuberik.com/retry": "2"}


def test_unblock_failed_allows_next_deploy_in_recovery_mode():
    world = failed_world()
    world.annotations = {"rollout.kuberik.com/unblock-failed": "true"}
    world.sync()
    assert world.deployed == "1.0.0", "no candidate yet: the unblock waits for the next release"
    assert world.status["acknowledgedAnnotations"] == {}
    world.advance(minutes=1)
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.history[0]["message"] == "Automatic deployment, with failed bake unblock"
    assert world.condition("BakeFailureDisabled") == ("True", "PreviousBakeFailed")
    # in recovery mode the still-present error before the bake starts is ignored
    assert world.bake == "Deploying"
    world.advance(minutes=1)
    world.check("smoke", "Healthy", changed=world.now, error=world.now - timedelta(seconds=30))
    world.sync()
    assert world.bake == "InProgress"


def test_manual_deploy_cancels_a_running_bake():
    world = baking_world()
    world.spec["wantedVersion"] = "0.9.0"
    world.sync()
    assert deployed_tags(world) == ["0.9.0", "1.0.0"]
    assert world.history[1]["bakeStatus"] == "Cancelled"
    assert world.bake == "Deploying"


# --- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bakeTime": "ten minutes"}, "spec.bakeTime"),
        ({"releasesImagePolicy": {"name": ""}}, "spec.releasesImagePolicy.name"),
        ({"versionHistoryLimit": 0}, "spec.versionHistoryLimit"),
        ({"healthCheckSelector": {"matchLabels": {"a": "b"}, "selector": {}}}, "spec.healthCheckSelector"),
        (
            {"healthCheckSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
            "spec.healthCheckSelector",
        ),
    ],
)
def test_invalid_spec_keeps_status_and_names_the_field(change, field):
    world = World()
    world.release("1.0.0")
    world.sync()
    before = dict(world.status)
    world.spec.update(change)
    world.release("2.0.0")
    world.sync()
    assert world.condition("Ready") == ("False", "InvalidSpec")
    assert world.message("Ready").startswith(field)
    for key, value in before.items():
        if key != "conditions":
            assert world.status[key] == value, key
    assert world.actuator.sent == []


def test_garbage_target_annotations_are_reported_not_patched():
    world = World()
    world.kustomization("no-var", {"rollout.kuberik.com/rollout": "app"}, {"VERSION": "0.1.0"})
    world.kustomization("bad-var", {"rollout.kuberik.com/substitute.NOT A VAR.from": "app"}, {})
    world.release("1.0.0")
    world.sync()
    world.sync()
    states = {(t["name"], t["field"]): (t["state"], t["message"]) for t in world.status["targets"]}
    assert states == {
        ("bad-var", "spec.postBuild.substitute.NOT A VAR"): (
            "Error",
            "invalid substitute variable name 'NOT A VAR' in annotation",
        ),
        ("no-var", "spec.postBuild.substitute"): (
            "Error",
            "annotation rollout.kuberik.com/substitute is missing or empty",
        ),
    }
    assert world.actuator.sent == []
    assert world.condition("Ready") == ("False", "TargetsFailing")
    assert world.deployed == "1.0.0", "the deployment itself is recorded"


def test_unblock_failed_with_another_value_is_acknowledged_without_effect():
    world = failed_world()
    world.annotations = {"rollout.kuberik.com/unblock-failed": "yes"}
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.0.0"
    assert world.status["acknowledgedAnnotations"] == {"rollout.kuberik.com/unblock-failed": "yes"}


def test_customize_asks_for_the_related_objects_of_the_spec():
    world = World(
        spec={
            "releasesImagePolicy": {"name": "app-releases"},
            "healthCheckSelector": {
                "selector": {"matchLabels": {"app": "app"}},
                "namespaceSelector": {"matchLabels": {"team": "shop"}},
            },
        }
    )
    body = {"controller": {}, "parent": world.rollout()}
    response = world.post(body, "/rollout/customize")
    assert response.status_code == 200
    shared = {"key": "rollout.kuberik.com/shared-health-checks", "operator": "In", "values": ["true"]}
    assert response.get_json() == {
        "relatedResources": [
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "resource": "imagepolicies",
                "namespace": NS,
                "names": ["app-releases"],
            },
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "resource": "ocirepositories", "namespace": NS},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resource": "kustomizations", "namespace": NS},
            {"apiVersion": "kuberik.com/v1alpha1", "resource": "rolloutgates", "namespace": NS},
            {
                "apiVersion": "kuberik.com/v1alpha1",
                "resource": "healthchecks",
                "namespace": NS,
                "labelSelector": {"matchLabels": {"app": "app"}},
            },
            # other namespaces only where they opted in (docs/tenancy.md)
            {
                "apiVersion": "kuberik.com/v1alpha1",
                "resource": "healthchecks",
                "labelSelector": {"matchLabels": {"app": "app"}},
                "namespaceSelector": {"matchLabels": {"team": "shop"}, "matchExpressions": [shared]},
            },
            {"apiVersion": "v1", "resource": "namespaces", "names": [NS]},
            {
                "apiVersion": "v1",
                "resource": "namespaces",
                "labelSelector": {"matchLabels": {"team": "shop"}, "matchExpressions": [shared]},
            },
        ]
    }
    # the plain selector shape looks in the Rollout's namespace (a v2 rule without a namespace
    # would span the cluster); an empty one asks for nothing
    world.spec["healthCheckSelector"] = {"matchLabels": {"app": "app"}}
    rules = world.post({"parent": world.rollout()}, "/rollout/customize").get_json()["relatedResources"]
    assert rules[-1] == {
        "apiVersion": "kuberik.com/v1alpha1",
        "resource": "healthchecks",
        "namespace": NS,
        "labelSelector": {"matchLabels": {"app": "app"}},
    }
    world.spec["healthCheckSelector"] = {}
    rules = world.post({"parent": world.rollout()}, "/rollout/customize").get_json()["relatedResources"]
    assert [r["resource"] for r in rules] == [
        "imagepolicies",
        "ocirepositories",
        "kustomizations",
        "rolloutgates",
    ]
