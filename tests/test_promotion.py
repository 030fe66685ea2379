"""Promotion between Rollouts, the pure part (docs/promotion.md): parsing, verification from the
upstream's own history, export rules, the sources status and the UpstreamVerified condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hooks.api.rollout import entry_trigger
from hooks.rollout import promotion as p
from hooks.rollout.ordering import parse_semver, semver_key

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NS = "prod"


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def semver_lower(a: str, b: str) -> bool:
    va, vb = parse_semver(a), parse_semver(b)
    return va is not None and vb is not None and semver_key(va) < semver_key(vb)


def entry(
    id_: int,
    tag: str,
    minutes: float,
    bake: str = "Succeeded",
    trigger: str | None = "Automatic",
    bake_start: float | None = None,
) -> dict[str, Any]:
    """A history entry as the Rollout sync writes it (newest first in `history`)."""
    e: dict[str, Any] = {
        "id": id_,
        "version": {"tag": tag, "digest": f"sha256:{id_:064x}", "discoveredAt": at(minutes - 5)},
        "timestamp": at(minutes),
        "message": "Automatic deployment" if trigger in (None, "Automatic") else "Manual deployment",
        "triggeredBy": {"kind": "System", "name": "rollout-controller"},
        "bakeStatus": bake,
        "bakeStatusMessage": {"Succeeded": "Bake completed successfully."}.get(bake, "Bake failed."),
    }
    if trigger is not None:
        e["trigger"] = trigger
    if bake in ("Succeeded", "Failed", "InProgress"):
        e["bakeStartTime"] = at(minutes + 2 if bake_start is None else bake_start)
    if bake in ("Succeeded", "Failed"):
        e["bakeEndTime"] = at(minutes + 12)
    return e


def rollout(
    name: str,
    namespace: str,
    history: list[dict[str, Any]],
    export: dict[str, Any] | None = None,
    promote_from: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"releasesImagePolicy": {"name": "app"}}
    if export is not None or promote_from is not None:
        spec["promotion"] = {}
        if export is not None:
            spec["promotion"]["exportTo"] = {"namespaceSelector": export}
        if promote_from is not None:
            spec["promotion"]["from"] = promote_from
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "generation": 3, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {"observedGeneration": 3, "history": history},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}},
        "status": {"phase": "Active"},
    }


# --- parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, None, id="no promotion: nothing to verify"),
        pytest.param({"from": []}, None, id="an empty from names no upstream"),
        pytest.param(
            {"from": [{"name": "staging"}]},
            p.Promotion((p.Source("staging", NS),)),
            id="namespace defaults to the Rollout's own, availability to OneOf",
        ),
        pytest.param(
            {
                "from": [{"name": "a", "namespace": "eu"}, {"name": "b"}],
                "availability": "All",
                "soakTime": "1h",
            },
            p.Promotion((p.Source("a", "eu"), p.Source("b", NS)), "All", timedelta(hours=1)),
            id="All with a soak time",
        ),
    ],
)
def test_parse(raw: Any, expected: p.Promotion | None) -> None:
    assert p.parse(raw, NS, "web") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"from": [{"name": "web"}]}, "names this Rollout itself", id="a Rollout naming itself"),
        pytest.param(
            {"from": [{"name": "web", "namespace": NS}]}, "itself", id="itself with its namespace spelled out"
        ),
        pytest.param({"from": [{"name": "a"}, {"name": "a"}]}, "twice", id="the same upstream twice"),
        pytest.param({"from": [{}]}, r"from\[0\]\.name", id="an upstream without a name"),
        pytest.param({"from": "staging"}, "must be a list", id="from is not a list"),
        pytest.param(
            {"from": [{"name": "a"}], "availability": "Any"}, "OneOf or All", id="unknown availability"
        ),
        pytest.param(
            {"from": [{"name": "a"}], "soakTime": "1 day"}, "soakTime", id="soak time not a duration"
        ),
        pytest.param("yes", "must be an object", id="promotion not an object"),
        pytest.param(
            {"from": [{"name": f"r{i}"} for i in range(21)]},
            "at most 20",
            id="more upstreams than the CRD allows",
        ),
    ],
)
def test_parse_rejects(raw: Any, message: str) -> None:
    with pytest.raises(p.InvalidPromotion, match=message):
        p.parse(raw, NS, "web")


# --- verification ------------------------------------------------------------------------

HOUR = timedelta(hours=1)
NOW = T0 + timedelta(hours=10)


@pytest.mark.parametrize(
    ("history", "soak", "verified"),
    [
        pytest.param([entry(1, "1.0.0", 0)], None, ("1.0.0",), id="a Succeeded bake verifies its release"),
        pytest.param(
            [entry(2, "1.1.0", 60, bake="InProgress"), entry(1, "1.0.0", 0)],
            None,
            ("1.0.0",),
            id="a release still baking upstream is not verified",
        ),
        pytest.param(
            [entry(2, "1.1.0", 60, bake="Failed"), entry(1, "1.0.0", 0)],
            None,
            ("1.0.0",),
            id="a Failed bake verifies nothing",
        ),
        pytest.param(
            [
                entry(3, "1.1.0", 120, bake="Failed", trigger="ForceDeploy"),
                entry(2, "1.1.0", 60),
                entry(1, "1.0.0", 0),
            ],
            None,
            ("1.0.0",),
            id="a later failed bake of the same release withdraws it",
        ),
        pytest.param(
            [entry(3, "1.0.0", 120, trigger="ForceDeploy"), entry(2, "1.1.0", 60), entry(1, "1.0.0", 0)],
            None,
            ("1.0.0",),
            id="a force-deploy back to a lower release withdraws the release moved away from",
        ),
        pytest.param(
            [entry(3, "1.0.0", 120, trigger="Rollback"), entry(2, "1.1.0", 60), entry(1, "1.0.0", 0)],
            None,
            ("1.0.0",),
            id="an automatic rollback withdraws the release it rolled back from",
        ),
        pytest.param(
            [entry(3, "1.2.0", 120, trigger="Pin"), entry(2, "1.1.0", 60), entry(1, "1.0.0", 0)],
            None,
            ("1.2.0", "1.1.0", "1.0.0"),
            id="a pin forward moves away from nothing",
        ),
        pytest.param(
            [entry(3, "hotfix-7", 120, trigger="Pin"), entry(2, "1.1.0", 60)],
            None,
            ("hotfix-7",),
            id="a pin to a tag the order cannot place counts as moving away",
        ),
        pytest.param(
            [
                entry(4, "1.1.0", 180),
                entry(3, "1.0.0", 120, trigger="Pin"),
                entry(2, "1.1.0", 60),
                entry(1, "1.0.0", 0),
            ],
            None,
            ("1.1.0", "1.0.0"),
            id="deployed again and baked after the rollback: verified again",
        ),
        pytest.param(
            [entry(1, "1.0.0", 0, trigger=None)],
            None,
            ("1.0.0",),
            id="entries an older controller wrote without trigger count",
        ),
        pytest.param(
            [entry(2, "1.1.0", 60), entry(1, "1.0.0", 0)],
            HOUR,
            ("1.1.0",),
            id="soak: 1.0.0 stayed deployed 58 minutes after its bake start, under the hour",
        ),
        pytest.param(
            [entry(2, "1.1.0", 120), entry(1, "1.0.0", 0)],
            HOUR,
            ("1.1.0", "1.0.0"),
            id="soak: 1.0.0 stayed 118 minutes, 1.1.0 is still deployed for hours",
        ),
        pytest.param(
            [{"version": "garbage"}, "not an entry", entry(1, "1.0.0", 0)],
            None,
            ("1.0.0",),
            id="malformed entries are passed over",
        ),
    ],
)
def test_verify(history: list[Any], soak: timedelta | None, verified: tuple[str, ...]) -> None:
    assert p.verify(history, soak=soak, now=NOW, is_lower=semver_lower).tags == verified


def test_soak_in_progress_gives_the_deadline() -> None:
    now = T0 + timedelta(minutes=30)
    result = p.verify([entry(1, "1.0.0", 0)], soak=HOUR, now=now, is_lower=semver_lower)
    assert result.tags == ()
    assert result.soak_deadline == T0 + timedelta(minutes=62)  # bake start (+2 min) + 1 h
    later = p.verify([entry(1, "1.0.0", 0)], soak=HOUR, now=T0 + timedelta(minutes=62), is_lower=semver_lower)
    assert later.tags == ("1.0.0",)


# --- observation, export, cycles -----------------------------------------------------------

ME = p.Source("web", NS)


def observe(
    promo: p.Promotion, rollouts: list[dict[str, Any]], namespaces: list[dict[str, Any]] | None = None
):
    return p.observe(promo, ME, rollouts, namespaces or [namespace(NS)], now=NOW, is_lower=semver_lower)


def test_same_namespace_upstream_is_always_readable() -> None:
    promo = p.Promotion((p.Source("staging", NS),))
    obs = observe(promo, [rollout("staging", NS, [entry(1, "1.0.0", 0)])])
    assert obs.sources[0] == p.SourceState(p.Source("staging", NS), True, True, "1.0.0", ("1.0.0",))
    assert obs.verified("1.0.0") and not obs.verified("1.1.0")


@pytest.mark.parametrize(
    ("export", "labels", "readable"),
    [
        pytest.param(None, {}, False, id="no exportTo: other namespaces may not read it"),
        pytest.param(
            {"matchLabels": {"env": "prod"}}, {"env": "prod"}, True, id="selector matches our namespace"
        ),
        pytest.param({"matchLabels": {"env": "prod"}}, {"env": "dev"}, False, id="selector does not match"),
        pytest.param({}, {}, True, id="an empty selector exports to every namespace"),
        pytest.param(
            {"matchLabels": {"bad key!": "x"}}, {}, False, id="an invalid selector exports to nobody"
        ),
    ],
)
def test_export(export: dict[str, Any] | None, labels: dict[str, str], readable: bool) -> None:
    promo = p.Promotion((p.Source("staging", "staging"),))
    upstream = rollout("staging", "staging", [entry(1, "1.0.0", 0)], export=export)
    obs = observe(promo, [upstream], [namespace(NS, **labels)])
    state = obs.sources[0]
    assert state.found and state.exported is readable
    assert obs.verified("1.0.0") is readable
    if not readable:  # never read: nothing of it is copied
        assert state.deployed is None and state.verified == ()


def test_missing_upstream() -> None:
    obs = observe(p.Promotion((p.Source("staging", NS),)), [])
    assert obs.sources[0] == p.SourceState(p.Source("staging", NS), False, False)
    assert not obs.verified("1.0.0")


@pytest.mark.parametrize(
    ("availability", "verified"),
    [
        pytest.param("OneOf", {"1.0.0", "1.1.0"}, id="OneOf: a release one upstream verified"),
        pytest.param("All", {"1.0.0"}, id="All: only releases every upstream verified"),
    ],
)
def test_availability(availability: str, verified: set[str]) -> None:
    promo = p.Promotion((p.Source("eu", NS), p.Source("us", NS)), availability)  # type: ignore[arg-type]
    obs = observe(
        promo,
        [
            rollout("eu", NS, [entry(2, "1.1.0", 60), entry(1, "1.0.0", 0)]),
            rollout("us", NS, [entry(2, "1.1.0", 60, bake="InProgress"), entry(1, "1.0.0", 0)]),
        ],
    )
    assert {t for t in ("1.0.0", "1.1.0", "1.2.0") if obs.verified(t)} == verified
    assert obs.releases() == ["1.1.0", "1.0.0"]


def test_all_with_a_missing_upstream_verifies_nothing() -> None:
    promo = p.Promotion((p.Source("eu", NS), p.Source("gone", NS)), "All")
    obs = observe(promo, [rollout("eu", NS, [entry(1, "1.0.0", 0)])])
    assert not obs.verified("1.0.0")


def test_direct_cycle_is_detected() -> None:
    promo = p.Promotion((p.Source("staging", NS),))
    upstream = rollout("staging", NS, [entry(1, "1.0.0", 0)], promote_from=[{"name": "web"}])
    assert observe(promo, [upstream]).cycles == (p.Source("staging", NS),)
    other = rollout("staging", NS, [entry(1, "1.0.0", 0)], promote_from=[{"name": "web", "namespace": "dev"}])
    assert observe(promo, [other]).cycles == ()


def test_verification_never_reads_the_upstreams_promotion_status() -> None:
    upstream = rollout("staging", NS, [entry(1, "1.0.0", 0, bake="InProgress")])
    upstream["status"]["promotion"] = {"sources": [{"name": "web", "namespace": NS, "verified": ["1.0.0"]}]}
    obs = observe(p.Promotion((p.Source("staging", NS),)), [upstream])
    assert not obs.verified("1.0.0")


def test_soak_deadline_reaches_the_observation() -> None:
    now = T0 + timedelta(minutes=30)
    promo = p.Promotion((p.Source("staging", NS),), soak=HOUR)
    obs = p.observe(
        promo, ME, [rollout("staging", NS, [entry(1, "1.0.0", 0)])], [], now=now, is_lower=semver_lower
    )
    assert obs.soak_deadline == T0 + timedelta(minutes=62)


# --- reporting -----------------------------------------------------------------------------


def test_sources_status_best_first_and_bounded() -> None:
    history = [entry(i, f"1.{i}.0", 60 * i) for i in range(30, 0, -1)]
    promo = p.Promotion((p.Source("staging", NS), p.Source("gone", NS)))
    obs = observe(promo, [rollout("staging", NS, history)])
    status = p.sources_status(obs, semver_lower)
    first, missing = status["sources"]
    assert first["found"] and first["deployed"] == "1.30.0"
    assert first["verified"] == [f"1.{i}.0" for i in range(30, 10, -1)]
    assert missing == {"name": "gone", "namespace": NS, "found": False, "verified": []}


@pytest.mark.parametrize(
    ("rollouts", "candidates", "expected"),
    [
        pytest.param(
            [rollout("staging", NS, [entry(1, "1.1.0", 0)])],
            ["1.1.0"],
            (True, "Verified", "Release 1.1.0 is verified upstream"),
            id="the best verified candidate is named",
        ),
        pytest.param(
            [rollout("staging", NS, [entry(1, "1.1.0", 0, bake="InProgress")])],
            ["1.1.0"],
            (
                False,
                "WaitingForUpstream",
                "No release candidate is verified by an upstream yet (best candidate: 1.1.0)",
            ),
            id="waiting while the upstream bakes",
        ),
        pytest.param(
            [],
            ["1.1.0"],
            (
                False,
                "UpstreamNotFound",
                "No release candidate is verified by an upstream yet (best candidate: 1.1.0) "
                "(Rollout prod/staging not found)",
            ),
            id="the upstream does not exist",
        ),
        pytest.param(
            [rollout("staging", NS, [entry(1, "1.1.0", 0)])],
            [],
            (True, "Verified", "No release candidate waits for upstream verification"),
            id="up to date: nothing waits",
        ),
    ],
)
def test_condition(
    rollouts: list[dict[str, Any]], candidates: list[str], expected: tuple[bool, str, str]
) -> None:
    obs = observe(p.Promotion((p.Source("staging", NS),)), rollouts)
    assert p.condition(obs, candidates) == expected


def test_condition_not_exported() -> None:
    promo = p.Promotion((p.Source("staging", "staging"),))
    obs = observe(promo, [rollout("staging", "staging", [entry(1, "1.1.0", 0)])])
    status, reason, message = p.condition(obs, ["1.1.0"])
    assert (status, reason) == (False, "UpstreamNotExported")
    assert "does not export to this namespace" in message


@pytest.mark.parametrize(
    ("entry_", "trigger"),
    [
        ({"trigger": "Pin"}, "Pin"),
        ({"message": "Automatic deployment, with gate bypass"}, "Automatic"),
        ({"message": "Adopted: the targets already carry 1.0.0"}, "Adoption"),
        ({"message": "Manual deployment"}, "ForceDeploy"),
        ({"message": "hotfix for INC-42"}, "ForceDeploy"),
        ({}, "ForceDeploy"),
    ],
)
def test_trigger_inferred_for_old_entries(entry_: dict[str, Any], trigger: str) -> None:
    """Verification reads triggers through the engine's own inference (hooks/api/rollout.py)."""
    assert entry_trigger(entry_) == trigger


# --- the engine's side: release order and spec --------------------------------------------------


def test_is_lower_uses_the_downstream_order_then_semver_for_tags_it_does_not_know() -> None:
    from hooks.rollout.ordering import NO_POLICY, order

    known = order(["build-b", "build-a"], NO_POLICY)  # not semver: discovery order
    assert known.is_lower("build-b", "build-a") and not known.is_lower("build-a", "build-b")
    assert known.is_lower("1.0.0", "1.1.0"), "unknown to the downstream: semver decides"
    assert not known.is_lower("hotfix", "1.1.0") and not known.is_lower("1.1.0", "hotfix")
    assert not known.is_lower("build-a", "1.0.0"), "one known, one not, no semver: cannot tell"


def test_no_policy_orders_by_discovery_but_a_missing_policy_does_not() -> None:
    from hooks.rollout.ordering import NO_POLICY, order, policy_of

    assert order(["b2", "b1"], NO_POLICY).tags == ["b2", "b1"]
    assert order(["b2", "b1"], policy_of(None)).tags == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({}, "required unless spec.promotion.from", id="neither an ImagePolicy nor upstreams"),
        pytest.param({"promotion": {"from": []}}, "required unless", id="an empty from is no source"),
        pytest.param({"promotion": {"from": [{"name": "web"}]}}, "names this Rollout itself", id="itself"),
        pytest.param(
            {"releasesImagePolicy": {"name": "app"}, "promotion": {"from": [{"name": "a"}], "soakTime": "x"}},
            "soakTime",
            id="a malformed promotion",
        ),
    ],
)
def test_spec_rejects(spec: dict[str, Any], message: str) -> None:
    from hooks.rollout.spec import InvalidSpec, parse_spec

    with pytest.raises(InvalidSpec, match=message):
        parse_spec({"metadata": {"name": "web", "namespace": NS}, "spec": spec})


def test_spec_promotion_only() -> None:
    from hooks.rollout.spec import parse_spec

    parsed = parse_spec(
        {"metadata": {"name": "web", "namespace": NS}, "spec": {"promotion": {"from": [{"name": "a"}]}}}
    )
    assert parsed.image_policy is None
    assert parsed.promotion == p.Promotion((p.Source("a", NS),))
