"""Spec audit: scenarios checking the Rollout engine against docs/spec/v1alpha1/rollout.md.

One rule per test.

Named after the rule they check. Each `world.sync()` also checks the CRD status schema
and the fixed point (tests/rollout_world.py).
"""

from __future__ import annotations

from datetime import timedelta

from tests.rollout_world import NS, T0, World, ts

BAKE = {"bakeTime": "10m", "deployTimeout": "30m", "healthCheckSelector": {"matchLabels": {"app": "app"}}}
FORCE = "rollout.kuberik.com/force-deploy"
BYPASS = "rollout.kuberik.com/bypass-gates"
UNBLOCK = "rollout.kuberik.com/unblock-failed"
RETRY = "rollout.kuberik.com/retry"
MESSAGE = "rollout.kuberik.com/deploy-message"
USER = "rollout.kuberik.com/deploy-user"


def tags(world: World) -> list[str]:
    return [h["version"]["tag"] for h in world.history]


def announce(world: World, *releases: str) -> None:
    for tag in releases:
        world.release(tag)
        world.sync()


def pinned(
    *releases: str, pin: str = "0.0.1", semver_policy: bool = True, latest: str | None = None
) -> World:
    """A world that knows `releases` (in that discovery order) while pinned to `pin`; the
    ImagePolicy finally announces `latest` (default: the last one), as Flux announces its best."""
    world = World(semver_policy=semver_policy)
    world.spec["wantedVersion"] = pin
    announce(world, *releases)
    if latest is not None:
        announce(world, latest)
    assert world.deployed == pin
    return world


def failed(**spec: object) -> World:
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE, **spec})
    world.check("smoke", "Healthy", changed=T0 - timedelta(hours=1))
    world.release("1.0.0")
    world.sync()
    world.check("smoke", "Unhealthy", changed=world.now, error=world.now, message="boom")
    world.sync()
    assert world.bake == "Failed"
    return world


# --- §3.3 ordering and candidates ----------------------------------------------------------


def test_3_3_prerelease_precedence_follows_semver_2():
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2"]
    order += ["1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    world = pinned(*reversed(order), latest="1.0.0")
    assert world.status["releaseCandidates"] == list(reversed(order))


def test_3_3_equal_order_values_are_ordered_by_discovery():
    # Build metadata cannot appear in an OCI tag ('+' is not allowed, §7): the ties that occur are
    # equal values that filterTags extracts, ordered by discovery.
    world = World(
        policy_spec={
            "policy": {"numerical": {}},
            "filterTags": {"pattern": "^b(?P<n>[0-9]+)-", "extract": "$n"},
        }
    )
    world.spec["wantedVersion"] = "b0-init"
    announce(world, "b0-init", "b2-red", "b1-blue", "b2-green")
    assert "hold" not in world.status  # the pin was the best known release when it deployed
    assert world.status["releaseCandidates"] == ["b2-green", "b2-red", "b1-blue"]
    del world.spec["wantedVersion"]
    world.sync()
    assert world.deployed == "b2-green"


def test_3_3_a_tag_that_is_not_an_oci_tag_is_never_recorded():
    world = World()
    world.release("1.0.0+build")
    world.sync()
    assert world.condition("ReleasesUpdated") == ("False", "NoLatestRef")
    assert world.status["availableReleases"] == [] and world.history == []


def test_3_3_unknown_deployed_version_in_semver_order_takes_greater_releases():
    world = pinned("1.0.0", "2.0.0", "1.6.0-rc.1", "1.5.0+build", pin="v1.5.0")
    assert world.status["releaseCandidates"] == ["2.0.0", "1.6.0-rc.1"]
    del world.spec["wantedVersion"]
    world.sync()
    assert world.deployed == "2.0.0"


def test_3_3_unknown_deployed_version_that_does_not_parse_has_no_candidates_and_ready_says_so():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "wantedVersion": "hotfix"})
    world.sync()  # pinned before any release is known: no hold
    announce(world, "1.0.0", "2.0.0")
    del world.spec["wantedVersion"]
    world.sync()
    assert world.status["releaseCandidates"] == [] and world.deployed == "hotfix"
    assert world.condition("Ready") == ("True", "Deployed")
    assert "automatic deploys cannot order hotfix" in world.message("Ready")


def test_3_3_unknown_deployed_version_with_a_hold_takes_releases_after_resume_after():
    # A pin to a hotfix tag sets a hold (§3.6a): releases after hold.resumeAfter are candidates.
    world = pinned("1.0.0", pin="hotfix")
    assert world.status["hold"]["resumeAfter"] == "1.0.0"
    del world.spec["wantedVersion"]
    world.sync()
    assert world.deployed == "hotfix" and world.status["releaseCandidates"] == []
    announce(world, "2.0.0")
    assert world.deployed == "2.0.0" and "hold" not in world.status


def test_3_3_unknown_deployed_version_in_discovery_order_has_no_candidates():
    world = World(
        policy_spec={"policy": {}}, spec={"releasesImagePolicy": {"name": "app"}, "wantedVersion": "red"}
    )
    world.sync()
    announce(world, "blue", "green")
    del world.spec["wantedVersion"]
    world.sync()
    assert world.status["releaseCandidates"] == [] and world.deployed == "red"


def test_3_3_no_releases_with_an_existing_entry_reports_no_releases_available():
    # docs/spec/v1alpha1/rollout.md (conditions): "With no known releases at all:
    # Ready=False/NoReleasesAvailable, nothing deployed
    # (bake processing of an existing entry still runs)."
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "wantedVersion": "1.0.0"})
    world.sync()  # no ImagePolicy: a pin needs none
    assert world.deployed == "1.0.0" and world.condition("Ready") == ("True", "Deployed")
    del world.spec["wantedVersion"]
    world.sync()
    assert world.condition("Ready") == ("False", "NoReleasesAvailable")
    assert "1.0.0" in world.message("Ready")


# --- §3.4 gates ----------------------------------------------------------------------------


def test_3_4_gate_summaries_and_condition_reasons():
    world = World()
    announce(world, "1.0.0")
    world.gate("a-list", allowed=["1.1.0"])
    world.gate("b-closed", passing=False, allowed=["9.9.9"])
    world.gate("c-open")
    world.release("1.1.0")
    world.sync()
    assert [(g["name"], g["message"]) for g in world.status["gates"]] == [
        ("a-list", "Gate is passing"),
        ("b-closed", "Gate is not passing"),
        ("c-open", "Gate is passing"),
    ]
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")
    world.gate("b-closed", allowed=["9.9.9"])
    world.gate("a-list", allowed=["1.1.0"], passing=True)
    world.sync()  # passing, but their lists share no candidate
    assert world.condition("GatesPassing") == ("False", "NoAllowedVersions")
    assert world.status["gates"][1]["message"] == "Gate does not allow any release candidate"
    world.annotations = {BYPASS: "1.1.0"}
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.condition("GatesPassing") == ("True", "AllGatesPassing"), "up to date after the bypass"


def test_3_4_bypass_of_a_lower_candidate_gates_only_that_candidate():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    announce(world, "1.0.0")
    world.gate("freeze", passing=False)
    announce(world, "1.1.0", "1.2.0")
    world.annotations = {BYPASS: "1.1.0"}
    world.advance(minutes=10)
    world.sync()
    assert tags(world) == ["1.1.0", "1.0.0"]
    # a closed gate blocks but does not filter: 1.2.0 stays a gated candidate, waiting
    assert world.status["gatedReleaseCandidates"] == ["1.2.0"]
    assert world.condition("GatesPassing") == ("False", "SomeGatesBlocking")
    assert world.status["acknowledgedAnnotations"] == {BYPASS: "1.1.0"}


def test_3_4_first_deploy_ignores_failing_gates_and_applies_allowed_versions():
    world = World()
    world.status = {"availableReleases": [{"tag": t, "discoveredAt": ts(T0)} for t in ("1.0.0", "1.1.0")]}
    world.gate("closed", passing=False, allowed=["1.0.0"])
    world.release("1.2.0")
    world.sync()
    assert tags(world) == ["1.0.0"]
    assert world.history[0]["message"] == "Automatic deployment"


# --- §3.5 health verdict and DeploymentBlocked ---------------------------------------------


def test_3_5_deployment_blocked_in_every_case():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": {"matchLabels": {}}})
    world.spec["healthCheckSelector"] = {"matchLabels": {"app": "app"}}
    world.check("z-last", "Unhealthy", message="z")
    world.check("a-first", "Unhealthy")
    announce(world, "1.0.0")  # first deploy: unhealthy checks do not block it
    assert world.deployed == "1.0.0"
    assert world.condition("DeploymentBlocked") == ("True", "UnhealthyHealthChecks"), "no candidate waits"
    assert world.message("DeploymentBlocked") == "HealthCheck 'a-first' in namespace 'shop' is not healthy"
    world.annotations = {FORCE: "1.0.0"}
    world.release("1.1.0")
    world.sync()  # force-deploy of the deployed tag: acknowledged, then automatic again
    assert world.condition("DeploymentBlocked") == ("True", "UnhealthyHealthChecks")
    world.annotations = {FORCE: "1.1.0"}
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.condition("DeploymentBlocked") == ("True", "UnhealthyHealthChecks"), "evaluated after ack"
    world.spec["wantedVersion"] = "1.1.0"
    world.sync()
    assert world.condition("DeploymentBlocked") == ("False", "ManualDeployment")
    del world.spec["wantedVersion"]
    world.checks.clear()
    world.sync()
    assert world.condition("DeploymentBlocked") == ("False", "HealthChecksHealthy")


def test_3_5_unblocked_unhealthy_health_is_not_reported_as_healthy_checks():
    # The reason is False/HealthChecksHealthy (the exception applies), but the message must not claim
    # that no check is unhealthy while one is.
    world = failed()
    world.annotations = {UNBLOCK: "true"}
    world.sync()  # no candidate yet: the unblock waits
    assert world.condition("DeploymentBlocked") == ("False", "HealthChecksHealthy")
    assert "'smoke'" in world.message("DeploymentBlocked")


# --- §3.6 / §3.7 / §3.9 bake ------------------------------------------------------------------


def test_3_6_force_deploy_over_in_progress_bake_cancels_it():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"})
    announce(world, "1.0.0", "1.1.0")
    assert world.bake == "InProgress"
    world.advance(minutes=3)
    world.annotations = {FORCE: "1.1.0", MESSAGE: "hotfix", USER: "alice"}
    world.sync()
    old, new = world.history[1], world.history[0]
    assert (old["bakeStatus"], old["bakeEndTime"]) == ("Cancelled", ts(world.now))
    assert new["message"] == "hotfix" and new["triggeredBy"] == {"kind": "User", "name": "alice"}
    assert world.status["acknowledgedAnnotations"] == world.annotations


def test_3_7_retry_starts_and_finishes_in_one_sync_and_clears_fields():
    world = failed(bakeTime="1m")
    world.advance(minutes=2)
    world.check("smoke", "Healthy", changed=world.now, error=world.now - timedelta(minutes=2))
    world.annotations = {RETRY: "x"}
    world.sync()
    entry = world.history[0]
    assert entry["bakeStatus"] == "InProgress" and entry["bakeStartTime"] == ts(world.now)
    assert entry["lastRetryTimestamp"] == ts(world.now)
    assert "failedHealthChecks" not in entry and "bakeEndTime" not in entry
    assert world.last["resyncAfterSeconds"] == 60
    world.advance(minutes=1)
    world.sync()
    assert world.bake == "Succeeded"


def test_3_7_deploy_timeout_lists_checks_that_are_not_freshly_healthy():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE})
    world.check("fresh", "Healthy", changed=T0)
    world.check("pending", "Pending", message="waiting for 1.0.0")
    world.check("silent", None)
    announce(world, "1.0.0")
    world.check("stale", "Healthy", changed=T0 - timedelta(seconds=1))
    world.advance(minutes=30)
    world.sync()
    assert world.bake == "Deploying" and world.last["resyncAfterSeconds"] == 1
    world.advance(seconds=1)
    world.sync()
    assert world.bake == "Failed"
    assert world.history[0]["failedHealthChecks"] == [
        {"name": "pending", "namespace": NS, "message": "HealthCheck is Pending: waiting for 1.0.0"},
        {"name": "silent", "namespace": NS, "message": "HealthCheck is not reporting a status"},
        {
            "name": "stale",
            "namespace": NS,
            "message": "HealthCheck has not reported healthy since the deployment",
        },
    ]


def test_3_9_recovery_reasons_and_recovery_ignores_early_errors_only():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, **BAKE})
    world.check("smoke", "Healthy", changed=T0)
    announce(world, "1.0.0")
    world.advance(minutes=10)
    world.sync()
    assert world.condition("BakeFailureDisabled") == ("False", "Normal")
    world.check("smoke", "Unhealthy", changed=world.now, message="flaky")
    world.annotations = {UNBLOCK: "true"}
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0"
    assert world.condition("BakeFailureDisabled") == ("True", "DeployedWithUnhealthyHealthChecks")
    assert world.history[0]["message"] == "Automatic deployment, with failed bake unblock"
    world.advance(minutes=1)
    world.check("smoke", "Healthy", changed=world.now, error=world.now - timedelta(seconds=30))
    world.sync()
    assert world.bake == "InProgress", "the error before the bake started is ignored"
    world.advance(minutes=1)
    world.check("smoke", "Healthy", changed=world.now - timedelta(minutes=1), error=world.now)
    world.sync()
    assert world.bake == "Failed"
    assert world.history[0]["bakeStatusMessage"] == "A HealthCheck reported an error after bake started."


# --- §3.8 history ------------------------------------------------------------------------------


def test_3_8_ids_survive_truncation_and_garbage_entries():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "versionHistoryLimit": 2})
    world.status = {"history": [{"id": 41, "version": {"tag": "0.9.0"}}, "garbage", {"version": {}}]}
    announce(world, "1.0.0", "1.1.0", "1.2.0")
    assert [h["id"] for h in world.history] == [44, 43]


def test_3_8_messages_combine_suffixes():
    world = failed()
    world.gate("freeze", passing=False)
    world.release("1.1.0")
    world.annotations = {BYPASS: "1.1.0", UNBLOCK: "true", MESSAGE: "not for automatic deploys"}
    world.sync()
    entry = world.history[0]
    assert entry["message"] == "Automatic deployment, with gate bypass, with failed bake unblock"
    assert entry["triggeredBy"] == {"kind": "System", "name": "rollout-controller"}
    # revised §3.10: a deploy-message no manual deploy used is acknowledged in the same sync
    assert world.status["acknowledgedAnnotations"] == {
        BYPASS: "1.1.0",
        UNBLOCK: "true",
        MESSAGE: "not for automatic deploys",
    }


# --- §3.10 acknowledgements ------------------------------------------------------------------


def test_3_10_acknowledgements_are_dropped_with_their_annotation_and_refresh_on_a_new_value():
    world = failed()
    world.annotations = {RETRY: "1"}
    world.sync()
    assert world.status["acknowledgedAnnotations"] == {RETRY: "1"}
    world.annotations = {}
    world.sync()
    assert world.status["acknowledgedAnnotations"] == {}
    world.annotations = {RETRY: "1"}  # the same value again, after it was removed: fresh again
    world.sync()
    assert world.status["acknowledgedAnnotations"] == {RETRY: "1"}


# --- §3.12 conditions, §3.13 resync ----------------------------------------------------------


def test_3_12_every_condition_present_with_stable_transition_times():
    world = World()
    world.generation = 3
    announce(world, "1.0.0")
    types = [c["type"] for c in world.status["conditions"]]
    spec_types = ("Ready", "ReleasesUpdated", "GatesPassing", "DeploymentBlocked")
    assert types == [*spec_types, "BakeFailureDisabled", "TargetsSynced", "Reconciling", "Stalled"]
    assert all(c["observedGeneration"] == 3 for c in world.status["conditions"])
    world.advance(minutes=5)
    world.generation = 4
    world.spec["bakeTime"] = "10m"
    world.release("1.1.0")
    world.sync()
    ready = world.status["conditions"][0]
    assert (ready["reason"], ready["lastTransitionTime"], ready["observedGeneration"]) == (
        "Deployed",
        ts(T0),
        4,
    )
    world.policy = None
    world.sync()
    updated = world.status["conditions"][1]
    assert (updated["status"], updated["lastTransitionTime"]) == ("False", ts(world.now))


def test_3_13_resync_is_the_earliest_deadline():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "deployTimeout": "2m", "bakeTime": "1h"})
    world.spec["healthCheckSelector"] = {"matchLabels": {"app": "app"}}
    world.check("smoke", "Pending")
    announce(world, "1.0.0")
    assert world.bake == "Deploying" and world.last["resyncAfterSeconds"] == 121
    world.check("smoke", "Healthy", changed=world.now)
    world.sync()
    assert world.last["resyncAfterSeconds"] == 300


# --- §4.1 targets -------------------------------------------------------------------------------


def test_4_1_targets_are_sorted_and_patched_only_after_the_decision_is_persisted():
    world = World()
    world.ocirepo("b-repo", tag="0.1.0")
    world.ocirepo("a-repo", tag="0.1.0", semver="1.x")
    world.kustomization("z-kust", {"rollout.kuberik.com/substitute.B.from": "app"}, {"B": "0.1.0"})
    world.kustomization("z-kust2", {"rollout.kuberik.com/substitute.A.from": "app"}, {})
    announce(world, "1.0.0")  # also the fixed-point replay: still no patch
    assert world.actuator.sent == []
    keys = [(t["kind"], t["name"], t["field"], t["state"]) for t in world.status["targets"]]
    assert keys == [
        ("Kustomization", "z-kust", "spec.postBuild.substitute.B", "Pending"),
        ("Kustomization", "z-kust2", "spec.postBuild.substitute.A", "Pending"),
        ("OCIRepository", "a-repo", "spec.ref.tag", "Blocked"),
        ("OCIRepository", "b-repo", "spec.ref.tag", "Pending"),
    ]
    world.sync()
    assert sorted(p.name for p in world.actuator.sent) == ["b-repo", "z-kust", "z-kust2"]
    assert world.condition("Ready") == ("False", "TargetsFailing")


def test_3_10_force_deploy_while_pinned_is_acknowledged_even_when_empty():
    # `kubectl annotate ... force-deploy=$TAG` with $TAG unset: ignored while the pin holds, and it
    # must not hold automatic deploys back (ForceDeployVersionUnknown) once the pin is removed.
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "wantedVersion": "1.0.0"})
    world.annotations = {FORCE: ""}
    announce(world, "1.0.0")
    assert world.status["acknowledgedAnnotations"] == {FORCE: ""}
    del world.spec["wantedVersion"]
    announce(world, "1.1.0")
    assert world.deployed == "1.1.0" and world.condition("Ready") == ("True", "Deployed")
