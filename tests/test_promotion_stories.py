"""Promotion between Rollouts (docs/promotion.md), end to end through /rollout/sync.

Several Rollouts are synced in turn on one clock. Each request carries what Metacontroller
would send: the related objects the customize hook's rules select (tests/metacontroller_select.py)
from the cluster as it stands, so a downstream sees each upstream with the status that upstream's
last sync persisted. Every sync checks the CRD status schema and the fixed point
(tests/rollout_world.py); Flux objects carry the status Flux writes (tests/flux_objects.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hooks.k8s import parse_time
from hooks.metacontroller import parse_request
from hooks.rollout.customize import related_rules
from hooks.rollout.engine import evaluate
from tests.metacontroller_select import Cluster, related
from tests.rollout_world import NS, T0, World, ts
from tests.test_rollout_properties import examples

CHECKED = {"bakeTime": "30m", "deployTimeout": "1h", "healthCheckSelector": {"matchLabels": {"app": "app"}}}
FORCE = "rollout.kuberik.com/force-deploy"
BYPASS = "rollout.kuberik.com/bypass-gates"
DIGEST = "sha256:" + "ab" * 32


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


@dataclass
class Pipeline:
    """Rollouts in one cluster, each a World, synced in turn on one clock."""

    now: datetime = T0
    stages: dict[str, World] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(
        self,
        name: str,
        namespace_: str = NS,
        *,
        policy: bool = True,
        promotion: dict[str, Any] | None = None,
        **spec: Any,
    ) -> World:
        """A Rollout with a HealthCheck and one OCIRepository target that Flux reconciled."""
        body: dict[str, Any] = {**CHECKED, **spec}
        if policy:
            body["releasesImagePolicy"] = {"name": "app"}
        if promotion is not None:
            body["promotion"] = promotion
        world = World(name=name, namespace=namespace_, spec=body, now=self.now)
        world.ocirepo("manifests", tag="bootstrap", rollout=name)  # not a release: nothing to adopt
        world.check("smoke", "Healthy", changed=self.now - timedelta(hours=1))
        self.stages[name] = world
        self.namespaces.setdefault(namespace_, namespace(namespace_))
        return world

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def request_of(self, world: World) -> dict[str, Any]:
        """What Metacontroller sends: the world's own objects plus what the customize rules select."""
        cluster = Cluster()
        cluster.add(*(w.rollout() for w in self.stages.values()), *self.namespaces.values())
        rules = [r for r in related_rules(world.rollout()) if r["resource"] in ("rollouts", "namespaces")]
        world.extra_related = related(cluster, rules)
        world.now = self.now
        return world.request()

    def sync(self, name: str) -> World:
        world = self.stages[name]
        self.request_of(world)
        world.sync()
        return world

    def explain(self, name: str, tag: str) -> str:
        """The CLI's `why TAG` for this Rollout now."""
        world = self.stages[name]
        return evaluate(parse_request(self.request_of(world)), self.now, ask=tag).explain[tag]

    def bake(self, name: str) -> World:
        """The deployed version of `name` reaches Flux, its check turns healthy and its bake ends."""
        world = self.sync(name)
        world.flux_applies()
        self.advance(minutes=1)
        world.check("smoke", "Healthy", changed=self.now)
        self.sync(name)
        assert world.bake == "InProgress", world.history[0]
        self.advance(minutes=31)
        self.sync(name)
        assert world.bake == "Succeeded", world.history[0]
        return world

    def fail(self, name: str) -> World:
        """The deployed version of `name` reaches Flux and its check turns unhealthy."""
        world = self.sync(name)
        world.flux_applies()
        self.advance(minutes=2)
        world.check("smoke", "Unhealthy", changed=self.now, error=self.now, message="5xx above 1%")
        self.sync(name)
        assert world.bake == "Failed", world.history[0]
        return world

    def release(self, tag: str, *names: str, digest: str | None = None) -> None:
        """The ImagePolicy of each named Rollout announces `tag`."""
        for name in names:
            self.stages[name].release(tag, digest)


def upstream(name: str, namespace_: str | None = None) -> dict[str, Any]:
    return {"name": name} if namespace_ is None else {"name": name, "namespace": namespace_}


def candidates(world: World) -> list[str]:
    return world.status.get("releaseCandidates", [])


# --- dev -> staging -> prod --------------------------------------------------------------------


def test_dev_to_staging_to_prod_each_takes_only_what_baked_upstream() -> None:
    p = Pipeline()
    p.add("dev")
    staging = p.add("staging", policy=False, promotion={"from": [upstream("dev")]})
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "dev", "prod", digest=DIGEST)

    dev = p.sync("dev")
    assert dev.deployed == "1.0.0"
    for name in ("staging", "prod"):
        p.sync(name)
    assert staging.deployed is None and prod.deployed is None, "nothing baked upstream yet"
    assert staging.status["availableReleases"] == []
    assert staging.condition("ReleasesUpdated") == ("True", "ReleasesUpdated")
    assert "none verified yet" in staging.message("ReleasesUpdated")
    assert prod.condition("UpstreamVerified") == ("False", "WaitingForUpstream")
    assert p.explain("prod", "1.0.0") == "not verified upstream"

    p.bake("dev")
    p.sync("staging")  # dev's status write triggers staging's sync: 1.0.0 is now a release
    assert staging.status["availableReleases"] == [
        {"tag": "1.0.0", "digest": DIGEST, "discoveredAt": p.now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    ]
    assert staging.deployed == "1.0.0"
    assert staging.status["promotion"] == {
        "sources": [
            {"name": "dev", "namespace": NS, "found": True, "deployed": "1.0.0", "verified": ["1.0.0"]}
        ]
    }
    p.sync("prod")
    assert prod.deployed is None, "staging is still baking 1.0.0"

    p.bake("staging")
    p.sync("prod")  # staging's status write: prod deploys in this very sync
    assert prod.deployed == "1.0.0" and prod.history[0]["trigger"] == "Automatic"
    assert prod.condition("UpstreamVerified") == ("True", "Verified")
    p.bake("prod")

    # the next release travels the same way, one stage after the other
    p.advance(hours=1)
    p.release("1.1.0", "dev", "prod")
    for name in ("dev", "staging", "prod"):
        p.sync(name)
    assert (dev.deployed, staging.deployed, prod.deployed) == ("1.1.0", "1.0.0", "1.0.0")
    assert candidates(prod) == ["1.1.0"]
    p.bake("dev")
    p.sync("staging")
    p.sync("prod")
    assert (staging.deployed, prod.deployed) == ("1.1.0", "1.0.0")
    p.bake("staging")
    p.sync("prod")
    assert prod.deployed == "1.1.0"


def test_a_rollout_without_image_policy_orders_non_semver_upstream_tags_by_discovery() -> None:
    p = Pipeline()
    dev = p.add("dev")
    dev.semver_policy = False  # builds named by date: alphabetical in dev's ImagePolicy
    staging = p.add("staging", policy=False, promotion={"from": [upstream("dev")]})
    for tag in ("build-20261102", "build-20261103"):
        p.release(tag, "dev")
        p.sync("dev")
        p.bake("dev")
        p.sync("staging")
        assert staging.deployed == tag, p.explain("staging", tag)
        p.bake("staging")
        p.advance(hours=1)
    assert [r["tag"] for r in staging.status["availableReleases"]] == ["build-20261102", "build-20261103"]
    assert staging.condition("ReleasesUpdated") == ("True", "ReleasesUpdated")
    assert "the latest is build-20261103" in staging.message("ReleasesUpdated")


# --- soak ----------------------------------------------------------------------------------------


def test_soak_downstream_waits_and_resyncs_at_the_end_of_the_soak() -> None:
    p = Pipeline()
    p.add("staging")
    prod = p.add(
        "prod", promotion={"from": [upstream("staging")], "soakTime": "2h"}, releaseUpdateInterval="24h"
    )
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    staging = p.bake("staging")
    bake_start = parse_time(staging.history[0]["bakeStartTime"])
    assert bake_start is not None
    p.sync("prod")
    assert prod.deployed is None, "baked, but not soaked for 2h yet"
    assert prod.condition("UpstreamVerified") == ("False", "WaitingForUpstream")
    soak_end = bake_start + timedelta(hours=2)
    assert prod.last["resyncAfterSeconds"] == (soak_end - p.now).total_seconds()

    p.now = soak_end - timedelta(seconds=1)
    p.sync("prod")
    assert prod.deployed is None and prod.last["resyncAfterSeconds"] == 1
    p.now = soak_end  # the resync Metacontroller was asked for
    p.sync("prod")
    assert prod.deployed == "1.0.0"


# --- OneOf and All -----------------------------------------------------------------------------


def _regions(availability: str | None) -> tuple[Pipeline, World]:
    p = Pipeline()
    p.add("eu")
    p.add("us")
    promotion: dict[str, Any] = {"from": [upstream("eu"), upstream("us")]}
    if availability is not None:
        promotion["availability"] = availability
    prod = p.add("prod", promotion=promotion)
    p.release("1.0.0", "eu", "us", "prod")
    p.sync("eu")
    p.bake("eu")
    p.sync("us")  # us deploys 1.0.0 and is still waiting for its bake
    return p, prod


def test_one_of_takes_a_release_one_upstream_verified() -> None:
    p, prod = _regions(None)
    p.sync("prod")
    assert prod.deployed == "1.0.0"
    sources = prod.status["promotion"]["sources"]
    assert [(s["name"], s["verified"]) for s in sources] == [("eu", ["1.0.0"]), ("us", [])]


def test_all_waits_for_every_upstream() -> None:
    p, prod = _regions("All")
    p.sync("prod")
    assert prod.deployed is None
    assert prod.condition("UpstreamVerified") == ("False", "WaitingForUpstream")
    assert "every upstream" in prod.message("UpstreamVerified")
    p.bake("us")
    p.sync("prod")
    assert prod.deployed == "1.0.0"


# --- withdrawn upstream ---------------------------------------------------------------------------


def _staging_and_gated_prod() -> tuple[Pipeline, World, World]:
    """staging and prod run 1.0.0; prod's gate is closed while staging tries 1.1.0."""
    p = Pipeline()
    p.add("staging")
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    staging = p.bake("staging")
    p.sync("prod")
    p.bake("prod")
    prod.gate("change-freeze", passing=False, rollout="prod")
    p.advance(hours=1)
    p.release("1.1.0", "staging", "prod")
    p.sync("staging")
    return p, staging, prod


def test_a_failed_upstream_bake_is_never_promoted() -> None:
    p, _, prod = _staging_and_gated_prod()
    p.fail("staging")
    prod.gate("change-freeze", passing=True, rollout="prod")
    p.sync("prod")
    assert prod.deployed == "1.0.0"
    assert p.explain("prod", "1.1.0") == "not verified upstream"
    assert prod.status["promotion"]["sources"][0]["verified"] == ["1.0.0"]


def test_a_rollback_upstream_withdraws_the_release_it_left() -> None:
    p, staging, prod = _staging_and_gated_prod()
    p.bake("staging")
    p.sync("prod")
    assert prod.status["promotion"]["sources"][0]["verified"] == ["1.1.0", "1.0.0"]
    staging.annotations = {FORCE: "1.0.0"}  # an operator sends staging back
    p.sync("staging")
    assert staging.deployed == "1.0.0" and staging.history[0]["trigger"] == "ForceDeploy"
    prod.gate("change-freeze", passing=True, rollout="prod")
    p.sync("prod")
    assert prod.deployed == "1.0.0", "1.1.0 was withdrawn by the rollback"
    assert prod.status["promotion"]["sources"][0] == {
        "name": "staging",
        "namespace": NS,
        "found": True,
        "deployed": "1.0.0",
        "verified": ["1.0.0"],
    }
    assert prod.condition("UpstreamVerified") == ("False", "WaitingForUpstream")


# --- first deploy and adoption ------------------------------------------------------------------


def test_a_new_prod_never_takes_an_unverified_release_first() -> None:
    p = Pipeline()
    p.add("staging")
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    for _ in range(3):
        p.sync("prod")
        p.advance(minutes=10)
    assert prod.history == [], "gates and health do not apply to a first deploy; promotion does"
    assert prod.condition("Ready")[1] == "NoReleasesAvailable"
    ready = next(c for c in prod.status["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("No release has been deployed yet: ")  # not "none known"
    assert prod.condition("UpstreamVerified") == ("False", "WaitingForUpstream")
    p.bake("staging")
    p.sync("prod")
    assert prod.deployed == "1.0.0"


def test_adoption_still_records_what_prod_already_runs() -> None:
    p = Pipeline()
    p.add("staging")
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    prod.ocirepo("manifests", tag="1.0.0", rollout="prod")
    p.release("1.0.0", "staging", "prod")
    p.sync("prod")
    assert prod.deployed == "1.0.0" and prod.history[0]["trigger"] == "Adoption"


# --- export ---------------------------------------------------------------------------------------


def test_an_upstream_in_another_namespace_is_read_only_when_it_exports() -> None:
    p = Pipeline()
    staging = p.add("app", "staging")
    prod = p.add("app", "production", promotion={"from": [upstream("app", "staging")]})
    p.stages = {"staging": staging, "prod": prod}  # the same name in two namespaces
    p.namespaces["production"] = namespace("production", env="production")
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    p.bake("staging")

    p.sync("prod")
    assert prod.deployed is None
    assert prod.status["promotion"] == {
        "sources": [{"name": "app", "namespace": "staging", "found": True, "verified": []}]
    }
    assert prod.condition("UpstreamVerified") == ("False", "UpstreamNotExported")
    assert "does not export to this namespace" in prod.message("UpstreamVerified")

    staging.spec["promotion"] = {"exportTo": {"namespaceSelector": {"matchLabels": {"env": "staging"}}}}
    p.sync("staging")
    assert staging.status["promotion"] == {"sources": []}
    p.sync("prod")
    assert prod.deployed is None, "the selector does not match production"

    staging.spec["promotion"] = {"exportTo": {"namespaceSelector": {"matchLabels": {"env": "production"}}}}
    p.sync("staging")
    p.sync("prod")
    assert prod.deployed == "1.0.0"
    assert prod.status["promotion"]["sources"][0]["deployed"] == "1.0.0"


def test_a_missing_upstream_is_reported() -> None:
    p = Pipeline()
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "prod")
    p.sync("prod")
    assert prod.deployed is None
    assert prod.condition("UpstreamVerified") == ("False", "UpstreamNotFound")
    assert prod.status["promotion"]["sources"] == [
        {"name": "staging", "namespace": NS, "found": False, "verified": []}
    ]


# --- invalid specs keep the status ----------------------------------------------------------------


def _running_prod(promotion: dict[str, Any]) -> tuple[Pipeline, World]:
    p = Pipeline()
    p.add("staging")
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    p.bake("staging")
    p.sync("prod")
    p.bake("prod")
    prod.spec["promotion"] = promotion
    prod.generation += 1
    return p, prod


def test_a_rollout_naming_itself_is_invalid_and_keeps_its_history() -> None:
    p, prod = _running_prod({"from": [upstream("prod")]})
    before = dict(prod.status)
    p.sync("prod")
    assert prod.condition("Ready") == ("False", "InvalidSpec")
    assert "names this Rollout itself" in prod.message("Ready")
    assert {k: v for k, v in prod.status.items() if k != "conditions"} == {
        k: v for k, v in before.items() if k != "conditions"
    }


def test_a_direct_cycle_is_invalid_and_keeps_the_history() -> None:
    p, prod = _running_prod({"from": [upstream("staging")]})
    p.stages["staging"].spec["promotion"] = {"from": [upstream("prod")]}
    before = {k: v for k, v in prod.status.items() if k != "conditions"}
    p.sync("prod")
    assert prod.condition("Ready") == ("False", "InvalidSpec")
    assert prod.condition("Stalled") == ("True", "InvalidSpec")
    assert "promotes from this Rollout (a direct cycle)" in prod.message("Ready")
    assert {k: v for k, v in prod.status.items() if k != "conditions"} == before
    staging = p.sync("staging")
    assert staging.condition("Ready") == ("False", "InvalidSpec")
    assert staging.history[0]["version"]["tag"] == "1.0.0"


# --- manual deploys and bypass --------------------------------------------------------------------


def test_force_deploy_bypass_and_pin_pass_promotion() -> None:
    p = Pipeline()
    p.add("staging")
    prod = p.add("prod", promotion={"from": [upstream("staging")]})
    p.release("1.0.0", "staging", "prod")
    p.sync("staging")
    p.bake("staging")
    p.sync("prod")
    p.bake("prod")

    p.advance(hours=1)
    p.release("1.1.0", "prod")  # not even deployed upstream
    p.sync("prod")
    assert prod.deployed == "1.0.0"
    prod.annotations = {FORCE: "1.1.0"}
    p.sync("prod")
    assert prod.deployed == "1.1.0" and prod.history[0]["trigger"] == "ForceDeploy"
    p.bake("prod")

    p.advance(hours=1)
    p.release("1.2.0", "prod")
    p.sync("prod")
    assert prod.deployed == "1.1.0"
    assert p.explain("prod", "1.2.0") == "not verified upstream"
    prod.annotations = {**prod.annotations, BYPASS: "1.2.0"}
    p.sync("prod")
    head = prod.history[0]
    assert (head["version"]["tag"], head["trigger"]) == ("1.2.0", "Automatic")
    assert head["message"] == "Automatic deployment, with gate bypass"

    prod.spec["wantedVersion"] = "1.3.0"  # a pin, of a tag no upstream ever ran
    prod.generation += 1
    p.sync("prod")
    assert (prod.deployed, prod.history[0]["trigger"]) == ("1.3.0", "Pin")


def test_removing_promotion_removes_its_status_and_condition() -> None:
    p, prod = _running_prod({})
    del prod.spec["promotion"]
    p.sync("prod")
    assert "promotion" not in prod.status
    assert all(c["type"] != "UpstreamVerified" for c in prod.status["conditions"])


# --- property: nothing unsoaked or unbaked upstream is deployed automatically ----------------------

TAGS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0")
SOAKS = {None: None, "30m": timedelta(minutes=30), "2h": timedelta(hours=2)}


@st.composite
def upstream_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An upstream's status.history (newest first) as the sync writes it: ids and times increase."""
    count = draw(st.integers(0, 6))
    moment, entries = T0 - timedelta(hours=12), []
    for i in range(count):
        moment += timedelta(minutes=draw(st.integers(1, 240)))
        tag = draw(st.sampled_from(TAGS))
        bake = draw(st.sampled_from(["Succeeded", "Failed", "InProgress", "Deploying", "Cancelled"]))
        trigger = draw(st.sampled_from(["Automatic", "Pin", "ForceDeploy", "Rollback"]))
        entry: dict[str, Any] = {
            "id": i + 1,
            "version": {"tag": tag, "digest": DIGEST, "discoveredAt": ts(moment)},
            "timestamp": ts(moment),
            "message": "Automatic deployment" if trigger == "Automatic" else "Manual deployment",
            "trigger": trigger,
            "triggeredBy": {"kind": "System", "name": "rollout-controller"},
            "bakeStatus": bake,
            "bakeStatusMessage": bake,
        }
        if bake != "Deploying":
            entry["bakeStartTime"] = ts(moment + timedelta(minutes=draw(st.integers(0, 20))))
        if bake in ("Succeeded", "Failed", "Cancelled"):
            entry["bakeEndTime"] = entry["bakeStartTime"]
        entries.insert(0, entry)
    return entries


def _soaked_success(history: list[dict[str, Any]], tag: str, soak: timedelta | None, now: datetime) -> bool:
    """The test's own reading: some entry of `tag` baked Succeeded and stayed `soak` after its bake start."""
    for i, entry in enumerate(history):
        if entry["version"]["tag"] != tag or entry["bakeStatus"] != "Succeeded":
            continue
        start = parse_time(entry.get("bakeStartTime")) or parse_time(entry["timestamp"])
        until = parse_time(history[i - 1]["timestamp"]) if i else now
        assert start is not None and until is not None
        if soak is None or until - start >= soak:
            return True
    return False


@given(
    history=upstream_histories(),
    soak=st.sampled_from(sorted(SOAKS, key=str)),
    policy=st.booleans(),
    first=st.booleans(),
    bypass=st.none() | st.sampled_from(TAGS),
)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_automatic_deploy_without_a_soaked_succeeded_upstream_entry(
    history: list[dict[str, Any]], soak: str | None, policy: bool, first: bool, bypass: str | None
) -> None:
    p = Pipeline()
    staging = p.add("staging")
    staging.status = {"history": history}
    promotion: dict[str, Any] = {"from": [upstream("staging")]}
    if soak is not None:
        promotion["soakTime"] = soak
    prod = p.add("prod", policy=policy, promotion=promotion, releaseUpdateInterval="1h")
    if policy:
        p.release("1.4.0", "prod")
        prod.status = {
            "availableReleases": [{"tag": t, "discoveredAt": ts(T0 - timedelta(days=1))} for t in TAGS]
        }
    if not first:
        prod.status["history"] = [
            {
                "id": 1,
                "version": {"tag": "1.0.0"},
                "timestamp": ts(T0 - timedelta(days=1)),
                "message": "Manual deployment",
                "trigger": "Pin",
                "triggeredBy": {"kind": "System", "name": "rollout-controller"},
                "bakeStatus": "Succeeded",
                "bakeStatusMessage": "Bake completed successfully.",
            }
        ]
    if bypass is not None:
        prod.annotations = {BYPASS: bypass}
    before = {h["id"] for h in prod.status.get("history", [])}
    p.sync("prod")
    for entry in prod.history:
        if entry["id"] in before or entry["trigger"] != "Automatic":
            continue
        tag = entry["version"]["tag"]
        if entry["message"].endswith("with gate bypass"):
            assert tag == bypass
            continue
        assert _soaked_success(history, tag, SOAKS[soak], p.now), (tag, history)
