"""Targets that follow what Flux reports (docs/targets.md), through /rollout/sync.

Each scenario walks a realistic sequence: our patch bumps the object's generation (as the API
server does), then source-controller / kustomize-controller write their status the way they do
(tests/flux_objects.py). Every sync carries the persisted status forward and is checked to be a
fixed point and to fit the CRD (tests/rollout_world.py).
"""

from __future__ import annotations

import contextlib

import jsonpatch
import pytest

from hooks.rollout import targets
from tests import flux_objects as flux
from tests.flux_objects import at
from tests.rollout_world import World

VAR = "rollout.kuberik.com/substitute.APP_VERSION.from"


def api_applies(world: World) -> None:
    """The API server applies the patches sent: a spec change bumps `metadata.generation`."""
    for patch in world.actuator.sent:
        store = {"OCIRepository": world.ocirepos, "Kustomization": world.kustomizations}[patch.kind]
        current = store[patch.name]
        with contextlib.suppress(jsonpatch.JsonPatchTestFailed):
            new = jsonpatch.apply_patch(current, list(patch.ops))
            if new["spec"] != current["spec"]:
                new["metadata"]["generation"] = current["metadata"]["generation"] + 1
            store[patch.name] = new
    world.actuator.sent.clear()


def entries(world: World) -> dict[tuple[str, str, str], tuple[str, str]]:
    return {(t["kind"], t["name"], t["field"]): (t["state"], t["message"]) for t in world.status["targets"]}


def state_of(world: World, kind: str, name: str, field: str) -> str:
    return entries(world)[(kind, name, field)][0]


def baking(**spec: str) -> World:
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m", **spec})
    world.now = at(0)
    return world


def oci_world(tag: str = "1.0.0", **spec: str) -> World:
    """1.0.0 deployed and applied: the OCIRepository and the Kustomization it feeds are Ready."""
    world = baking(**spec)
    world.ocirepos["manifests"] = flux.ready(flux.ocirepository("manifests", tag, generation=4), tag, at(-60))
    world.kustomizations["app"] = flux.ready(flux.kustomization("app", generation=2), tag, at(-59))
    world.release(tag)
    world.sync()
    world.sync()
    assert world.deployed == tag
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    world.advance(minutes=10)
    world.sync()
    assert world.bake == "Succeeded"
    return world


def deploy(world: World, tag: str) -> None:
    """The ImagePolicy announces `tag`; decided (write-ahead), then patched on the next sync."""
    world.advance(minutes=1)
    world.release(tag)
    world.sync()
    assert world.deployed == tag
    assert world.actuator.sent == [], "no patch before the decision is persisted"
    world.sync()
    assert world.actuator.sent, "the persisted decision is patched"
    api_applies(world)


# --- OCIRepository: patched -> observed -> reconciling -> ready ---------------------------------


def test_oci_patched_observed_reconciling_ready_then_the_bake_starts():
    world = oci_world()
    deploy(world, "1.1.0")
    repo = world.ocirepos["manifests"]
    assert (repo["spec"]["ref"]["tag"], repo["metadata"]["generation"]) == ("1.1.0", 5)

    # patched: generation 5 not observed yet; Ready=True is for generation 4
    world.sync()
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Applying",
        "waiting for source-controller to reconcile generation 5",
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsPending")
    assert world.bake == "Deploying"

    # source-controller works on it
    world.advance(seconds=5)
    world.ocirepos["manifests"] = flux.reconciling(
        repo, world.now, "building artifact: new revision '1.1.0@sha256'"
    )
    world.sync()
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Applying",
        "Progressing: building artifact: new revision '1.1.0@sha256'",
    )
    assert world.bake == "Deploying"

    # artifact stored: fetching is not applying, the Kustomization has not applied it yet
    world.advance(seconds=5)
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    world.sync()
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Applying",
        "waiting for Kustomization app to apply 1.1.0",
    )
    assert state_of(world, "Kustomization", "app", "status.lastAppliedRevision") == "Applying"
    assert world.bake == "Deploying"

    # kustomize-controller applies the new revision
    world.advance(seconds=5)
    world.kustomizations["app"] = flux.reconciling(
        flux.attempted(world.kustomizations["app"], "1.1.0"), world.now
    )
    world.sync()
    assert entries(world)[("Kustomization", "app", "status.lastAppliedRevision")] == (
        "Applying",
        f"Progressing: Fetching manifests for revision {flux.revision('1.1.0')} with a timeout of 5m0s",
    )
    assert world.bake == "Deploying"
    world.advance(seconds=20)
    world.kustomizations["app"] = flux.ready(world.kustomizations["app"], "1.1.0", world.now)
    world.sync()
    assert {state for state, _ in entries(world).values()} == {"Synced"}
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    assert world.bake == "InProgress"
    assert world.history[0]["bakeStartTime"] == flux.ts(world.now), "bakeTime counts from Flux's apply"
    assert world.actuator.sent == []


def test_a_fresh_oci_repository_flux_never_reconciled():
    world = baking()
    world.ocirepos["manifests"] = flux.ocirepository("manifests", "1.0.0")  # observedGeneration -1
    world.release("1.0.0")
    world.sync()
    world.sync()
    assert world.actuator.sent == [], "it already carries the version"
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Applying",
        "waiting for source-controller to reconcile generation 1",
    )
    assert world.bake == "Deploying"
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.0.0", world.now)
    world.sync()
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    assert world.bake == "InProgress"


# --- failures Flux reports ------------------------------------------------------------------------

PULL_FAILED = (
    "failed to determine artifact digest: GET https://ghcr.io/v2/acme/app-manifests/manifests/1.1.0: "
    "MANIFEST_UNKNOWN: manifest unknown; unknown tag=1.1.0"
)


def test_a_missing_tag_fails_the_target_until_it_is_pushed():
    world = oci_world(deployTimeout="15m")
    deploy(world, "1.1.0")
    repo = world.ocirepos["manifests"]
    world.ocirepos["manifests"] = flux.failed(repo, "OCIArtifactPullFailed", PULL_FAILED, world.now)
    world.sync()
    target = next(t for t in world.status["targets"] if t["field"] == "spec.ref.tag")
    assert (target["state"], target["message"]) == ("Failed", f"OCIArtifactPullFailed: {PULL_FAILED}")
    assert target["errorSince"] == flux.ts(world.now)
    assert world.condition("TargetsSynced") == ("False", "TargetsFailing")
    assert world.condition("Ready") == ("False", "TargetsFailing")
    assert world.bake == "Deploying", "the old artifact is still served: no bake"
    assert (
        "OCIRepository/manifests spec.ref.tag: OCIArtifactPullFailed" in world.history[0]["bakeStatusMessage"]
    )
    # Flux retries and fails again: nothing changes
    world.advance(minutes=1)
    world.sync()
    assert world.bake == "Deploying"
    # the tag is pushed: source-controller's next retry succeeds
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    world.kustomizations["app"] = flux.ready(world.kustomizations["app"], "1.1.0", world.now)
    world.sync()
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    assert all("errorSince" not in t for t in world.status["targets"])
    assert world.bake == "InProgress"
    assert world.history[0]["bakeStatusMessage"] == "Bake started, monitoring for errors."


def test_a_missing_tag_that_never_appears_fails_the_entry_at_the_deploy_timeout():
    world = oci_world(deployTimeout="15m")
    deploy(world, "1.1.0")
    world.ocirepos["manifests"] = flux.failed(
        world.ocirepos["manifests"], "OCIArtifactPullFailed", PULL_FAILED, world.now
    )
    world.sync()
    world.advance(minutes=16)
    world.sync()
    assert world.bake == "Failed"
    message = world.history[0]["bakeStatusMessage"]
    assert message.startswith(
        "Deploy timeout reached before bake could start: Flux could not apply the version:"
    )
    assert "OCIArtifactPullFailed" in message
    assert (
        world.condition("Ready") == ("False", "BakeFailed") or world.condition("Ready")[1] == "TargetsFailing"
    )


def substitute_world() -> World:
    """A Kustomization whose postBuild substitute is driven (its source is a GitRepository)."""
    world = baking(deployTimeout="30m")
    ks = flux.kustomization(
        "app", annotations={VAR: "app"}, substitute={"APP_VERSION": "1.0.0"}, generation=3
    )
    ks["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "platform"}
    world.kustomizations["app"] = flux.ready(ks, "1.0.0", at(-60), applied="main@sha1:3f2a9c1d")
    world.release("1.0.0")
    world.sync()
    world.sync()
    world.advance(minutes=10)
    world.sync()
    assert world.bake == "Succeeded"
    return world


SUBSTITUTE = ("Kustomization", "app", "spec.postBuild.substitute.APP_VERSION")


def test_a_failed_apply_with_flux_retries():
    world = substitute_world()
    deploy(world, "1.1.0")
    ks = world.kustomizations["app"]
    assert ks["metadata"]["generation"] == 4
    world.sync()
    assert entries(world)[SUBSTITUTE] == (
        "Applying",
        "waiting for kustomize-controller to reconcile generation 4",
    )
    # attempt 1 fails: Ready=False for generation 4, observedGeneration stays at 3
    error = (
        "Deployment/shop/web dry-run failed: spec.template.spec.containers[0].image: "
        'Invalid value: "ghcr.io/acme/app:1.1.0 "'
    )
    world.kustomizations["app"] = flux.failed(
        flux.reconciling(ks, world.now), "ReconciliationFailed", error, world.now
    )
    assert world.kustomizations["app"]["status"]["observedGeneration"] == 3
    world.sync()
    assert entries(world)[SUBSTITUTE][0] == "Failed"
    assert entries(world)[SUBSTITUTE][1].startswith(
        "ReconciliationFailed: Deployment/shop/web dry-run failed"
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsFailing")
    assert world.bake == "Deploying"
    first = world.status["targets"][0]["errorSince"]
    # Flux retries: a new attempt in flight is Applying again, the next failure keeps its time
    world.advance(minutes=2)
    world.kustomizations["app"] = flux.reconciling(world.kustomizations["app"], world.now)
    world.sync()
    assert entries(world)[SUBSTITUTE][0] == "Applying"
    world.advance(minutes=1)
    world.kustomizations["app"] = flux.failed(
        world.kustomizations["app"], "ReconciliationFailed", error, world.now
    )
    world.sync()
    assert entries(world)[SUBSTITUTE][0] == "Failed"
    assert (
        world.status["targets"][0]["errorSince"] == flux.ts(world.now) != first
    )  # Ready went Unknown in between
    assert world.bake == "Deploying"


def test_a_post_build_substitution_failure():
    world = substitute_world()
    deploy(world, "1.1.0")
    message = "post build failed for 'app': replace : unable to replace variables: missing closing brace"
    world.kustomizations["app"] = flux.failed(world.kustomizations["app"], "BuildFailed", message, world.now)
    world.sync()
    assert entries(world)[SUBSTITUTE] == ("Failed", f"BuildFailed: {message}")
    assert world.condition("TargetsSynced") == ("False", "TargetsFailing")
    assert world.bake == "Deploying"
    world.advance(minutes=31)
    world.sync()
    assert world.bake == "Failed"
    assert "BuildFailed" in world.history[0]["bakeStatusMessage"]


def test_a_stalled_kustomization_is_failed():
    world = substitute_world()
    deploy(world, "1.1.0")
    message = "invalid CEL expression: undeclared reference to 'statuss'"
    world.kustomizations["app"] = flux.stalled(
        world.kustomizations["app"], "InvalidCELExpression", message, world.now
    )
    world.sync()
    assert entries(world)[SUBSTITUTE] == ("Failed", f"InvalidCELExpression: {message}")


def test_dependency_not_ready_is_applying_with_flux_message():
    world = substitute_world()
    deploy(world, "1.1.0")
    world.kustomizations["app"] = flux.dependency_not_ready(world.kustomizations["app"], "infra", world.now)
    world.sync()
    assert entries(world)[SUBSTITUTE] == (
        "Applying",
        "DependencyNotReady: dependency 'shop/infra' is not ready",
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsPending")
    assert world.bake == "Deploying"
    world.kustomizations["app"] = flux.ready(
        world.kustomizations["app"], "1.1.0", world.now, applied="main@sha1:3f2a9c1d"
    )
    world.sync()
    assert entries(world)[SUBSTITUTE][0] == "Synced"
    assert world.bake == "InProgress"


def test_artifact_failed_before_flux_retried_is_still_applying():
    """kustomize-controller marks ArtifactFailed while the source is still fetching; only a retried
    failure is one (docs/targets.md)."""
    world = oci_world()
    deploy(world, "1.1.0")
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    message = "Source artifact not found, retrying in 30s"
    world.kustomizations["app"] = flux.failed(
        world.kustomizations["app"], "ArtifactFailed", message, world.now, retried=False
    )
    world.sync()
    assert state_of(world, "Kustomization", "app", "status.lastAppliedRevision") == "Applying"
    world.kustomizations["app"] = flux.failed(
        world.kustomizations["app"], "ArtifactFailed", message, world.now
    )
    world.sync()
    assert entries(world)[("Kustomization", "app", "status.lastAppliedRevision")] == (
        "Failed",
        f"ArtifactFailed: {message}",
    )


# --- suspended ----------------------------------------------------------------------------------


def test_suspended_then_resumed():
    world = oci_world()
    # someone suspends the OCIRepository; Flux keeps recording the generation (Ready stays True)
    world.ocirepos["manifests"] = flux.suspended(world.ocirepos["manifests"])
    deploy(world, "1.1.0")
    world.sync()
    repo = world.ocirepos["manifests"]
    assert repo["spec"]["ref"]["tag"] == "1.1.0", "the field is patched; Flux picks it up on resume"
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Suspended",
        "OCIRepository manifests is suspended (spec.suspend: true)",
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsSuspended")
    assert world.bake == "Deploying", "a suspended source serves the old artifact"
    # resumed: Flux reconciles the new generation
    world.ocirepos["manifests"] = flux.resumed(repo)
    world.sync()
    assert state_of(world, "OCIRepository", "manifests", "spec.ref.tag") == "Applying"
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    world.kustomizations["app"] = flux.ready(world.kustomizations["app"], "1.1.0", world.now)
    world.sync()
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")
    assert world.bake == "InProgress"


def test_a_suspended_consumer_kustomization_holds_the_source_back():
    world = oci_world()
    world.kustomizations["app"] = flux.suspended(world.kustomizations["app"])
    deploy(world, "1.1.0")
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    world.sync()
    assert state_of(world, "Kustomization", "app", "status.lastAppliedRevision") == "Suspended"
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == (
        "Applying",
        "waiting for Kustomization app to apply 1.1.0",
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsSuspended")
    assert world.bake == "Deploying"


# --- a Kustomization sourced from a driven OCIRepository ------------------------------------------


def test_the_applied_revision_moves_only_after_the_artifact():
    """A Kustomization with a driven substitute whose source is the driven OCIRepository: Synced only
    once it applied the new artifact (`lastAppliedRevision` starts with `1.1.0@`)."""
    world = baking()
    world.ocirepos["manifests"] = flux.ready(
        flux.ocirepository("manifests", "1.0.0", generation=2), "1.0.0", at(-60)
    )
    ks = flux.kustomization(
        "app", annotations={VAR: "app"}, substitute={"APP_VERSION": "1.0.0"}, generation=7
    )
    world.kustomizations["app"] = flux.ready(ks, "1.0.0", at(-60))
    world.release("1.0.0")
    world.sync()
    world.advance(minutes=10)
    world.sync()
    deploy(world, "1.1.0")
    assert world.kustomizations["app"]["metadata"]["generation"] == 8
    # kustomize-controller reconciles the new substitute against the OLD artifact: Ready for gen 8
    world.kustomizations["app"] = flux.ready(world.kustomizations["app"], "1.0.0", world.now)
    world.sync()
    assert entries(world)[SUBSTITUTE] == (
        "Applying",
        f"waiting for kustomize-controller to apply 1.1.0 (last applied: {flux.revision('1.0.0')})",
    )
    assert world.bake == "Deploying"
    world.ocirepos["manifests"] = flux.ready(world.ocirepos["manifests"], "1.1.0", world.now)
    world.sync()
    assert entries(world)[SUBSTITUTE][0] == "Applying"
    assert world.bake == "Deploying"
    world.kustomizations["app"] = flux.ready(world.kustomizations["app"], "1.1.0", world.now)
    world.sync()
    assert {state for state, _ in entries(world).values()} == {"Synced"}
    assert sorted(entries(world)) == [
        ("Kustomization", "app", "spec.postBuild.substitute.APP_VERSION"),
        ("Kustomization", "app", "status.lastAppliedRevision"),
        ("OCIRepository", "manifests", "spec.ref.tag"),
    ]
    assert world.bake == "InProgress"


# --- never backwards by automation --------------------------------------------------------------


def semver_later(a: str, b: str) -> bool:
    def key(tag: str) -> tuple[int, ...]:
        return tuple(int(part) for part in tag.split("."))

    return key(a) > key(b)


def field_carrying(tag: str) -> targets.TargetField:
    repo = flux.ready(flux.ocirepository("manifests", tag, generation=3), tag)
    [field] = targets.find([repo], [], "app", flux.NS)
    return field


@pytest.mark.parametrize("trigger", ["Automatic", "Adoption"])
def test_an_automatic_deploy_never_moves_a_target_back(trigger):
    plan = targets.plan([field_carrying("1.2.0")], "1.1.0", "1.1.0", trigger=trigger, later=semver_later)
    assert plan.patches == []
    [entry] = plan.entries
    assert (entry["state"], entry["message"]) == (
        "Blocked",
        "carries 1.2.0, later than 1.1.0: not moved back automatically",
    )
    assert targets.synced_condition(plan.entries)[:2] == (False, "TargetsFailing")


@pytest.mark.parametrize("trigger", ["Pin", "ForceDeploy", "Rollback"])
def test_an_operator_decision_moves_it_back(trigger):
    plan = targets.plan([field_carrying("1.2.0")], "1.1.0", "1.1.0", trigger=trigger, later=semver_later)
    [patch] = plan.patches
    assert patch.ops[-1] == {"op": "replace", "path": "/spec/ref/tag", "value": "1.1.0"}
    assert plan.entries[0]["state"] == "Pending"


def test_an_earlier_value_is_moved_forward_automatically():
    plan = targets.plan([field_carrying("1.0.0")], "1.1.0", "1.1.0", trigger="Automatic", later=semver_later)
    assert len(plan.patches) == 1


# --- readiness for the engine ---------------------------------------------------------------------


def test_readiness_without_targets_is_synced():
    assert targets.readiness([], "1.0.0", dry_run=False) == targets.Readiness(True, None)
    assert targets.synced_condition([]) == (True, "NoTargets", "No Flux object names this Rollout")


def test_readiness_names_the_first_failed_target():
    repo = flux.failed(
        flux.patched(flux.ready(flux.ocirepository(), "1.0.0"), "spec", "ref", "tag", "1.1.0"),
        "OCIArtifactPullFailed",
        PULL_FAILED,
    )
    fields = targets.find([repo], [], "app", flux.NS)
    ready = targets.readiness(fields, "1.1.0", dry_run=False)
    assert ready == targets.Readiness(
        False, f"OCIRepository/manifests spec.ref.tag: OCIArtifactPullFailed: {PULL_FAILED}"
    )


def test_readiness_in_dry_run_counts_a_needed_patch_as_synced():
    repo = flux.ready(flux.ocirepository("manifests", "1.0.0"), "1.0.0")
    ks = flux.ready(flux.kustomization("app"), "1.0.0")
    fields = targets.find([repo], [ks], "app", flux.NS)
    assert targets.readiness(fields, "1.1.0", dry_run=False).synced is False
    assert targets.readiness(fields, "1.1.0", dry_run=True).synced is True
    # a target Flux has not finished is not rehearsed away
    moving = flux.reconciling(flux.patched(repo, "spec", "ref", "tag", "1.1.0"))
    fields = targets.find([moving], [ks], "app", flux.NS)
    assert targets.readiness(fields, "1.1.0", dry_run=True).synced is False


def test_targets_synced_condition_order():
    def entry(state: str) -> dict:
        return {
            "kind": "OCIRepository",
            "name": state.lower(),
            "field": "spec.ref.tag",
            "state": state,
            "message": "m",
        }

    assert targets.synced_condition([entry("Synced")])[:2] == (True, "AllTargetsSynced")
    assert targets.synced_condition([entry("Synced"), entry("Applying")])[:2] == (False, "TargetsPending")
    assert targets.synced_condition([entry("Pending"), entry("Suspended")])[:2] == (False, "TargetsSuspended")
    for failing in ("Failed", "Error", "Blocked"):
        status, reason, message = targets.synced_condition([entry("Suspended"), entry(failing)])
        assert (status, reason) == (False, "TargetsFailing")
        assert message == f"OCIRepository/{failing.lower()} spec.ref.tag: m"


def test_flux_messages_are_bounded():
    repo = flux.failed(
        flux.patched(flux.ready(flux.ocirepository(), "1.0.0"), "spec", "ref", "tag", "1.1.0"),
        "OCIArtifactPullFailed",
        "x" * 5000,
    )
    [entry] = targets.plan(targets.find([repo], [], "app", flux.NS), "1.1.0", None).entries
    assert entry["state"] == "Failed"
    assert len(entry["message"]) <= len("OCIArtifactPullFailed: ") + 256


def test_a_fresh_kustomization_flux_never_reconciled():
    world = baking()
    ks = flux.kustomization("app", annotations={VAR: "app"}, substitute={"APP_VERSION": "1.0.0"})
    ks["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "platform"}
    world.kustomizations["app"] = ks
    assert ks["status"] == {"observedGeneration": -1}
    world.release("1.0.0")
    world.sync()
    world.sync()
    assert entries(world)[SUBSTITUTE] == (
        "Applying",
        "waiting for kustomize-controller to reconcile generation 1",
    )
    assert world.condition("TargetsSynced") == ("False", "TargetsPending")
    assert world.bake == "Deploying"
    world.kustomizations["app"] = flux.reconciling(
        ks, world.now, "Building manifests for revision main@sha1:3f2a9c1d"
    )
    world.sync()
    assert entries(world)[SUBSTITUTE] == (
        "Applying",
        "Progressing: Building manifests for revision main@sha1:3f2a9c1d",
    )
    world.kustomizations["app"] = flux.ready(
        world.kustomizations["app"], "1.0.0", world.now, applied="main@sha1:3f2a9c1d"
    )
    world.sync()
    assert entries(world)[SUBSTITUTE] == ("Synced", "Flux applied the deployed version")
    assert world.bake == "InProgress"


def test_dry_run_reports_the_patch_and_bakes_as_if_applied():
    world = oci_world()
    world.actuator.mode = "dry-run"  # ROLLOUT_ACTUATION=dry-run: the actuator sends nothing
    world.advance(minutes=1)
    world.release("1.1.0")
    world.sync()
    world.sync()
    assert entries(world)[("OCIRepository", "manifests", "spec.ref.tag")] == ("Pending", "dry-run")
    assert world.condition("TargetsSynced") == ("False", "TargetsPending")
    assert world.bake == "InProgress", "a rehearsal counts the needed patch as applied"


def test_a_failure_of_the_value_still_carried_is_not_named_as_the_deployed_versions():
    """1.1.0 failed to pull; the operator deploys 1.1.1: until the patch lands, the old failure is
    what Flux reports (Failed, in the documented order), but it is not a failure to apply 1.1.1."""
    repo = flux.patched(flux.ready(flux.ocirepository(), "1.0.0"), "spec", "ref", "tag", "1.1.0")
    repo = flux.failed(repo, "OCIArtifactPullFailed", PULL_FAILED)
    fields = targets.find([repo], [], "app", flux.NS)
    [entry] = targets.plan(fields, "1.1.1", "1.1.1").entries
    assert entry["state"] == "Failed"
    assert targets.readiness(fields, "1.1.1", dry_run=False) == targets.Readiness(False, None)
