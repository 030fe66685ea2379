"""The choose step's reasons (docs rollout.md): what `explain` (and the CLI's `why`) reports for a
tag is the rule that keeps it out of an automatic deploy, computed by the code that decides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from hooks.api.rollout import Hold
from hooks.rollout import choose
from hooks.rollout.annotations import Annotations
from hooks.rollout.gates import Gate
from hooks.rollout.ordering import Policy, TagFilter, compile_filter, order

KNOWN = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]


def situation(**overrides: object) -> choose.Situation:
    base = choose.Situation(
        ordering=order(KNOWN, Policy("semver")),
        known=frozenset(KNOWN),
        deployed="1.0.0",
        head_state="Succeeded",
        first=False,
        announced="1.3.0",
        hold=None,
        suspended=False,
        pinned=None,
        unhealthy=None,
        unblock=False,
        bypass=None,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


HOLD: Hold = {"reason": "ManualRollback", "resumeAfter": "1.2.0", "since": "2026-03-02T09:00:00Z"}


@dataclass(frozen=True)
class Row:
    name: str
    tag: str
    want: str
    overrides: dict = field(default_factory=dict)


ROWS = [
    Row("a candidate nothing blocks is deployable", "1.3.0", "deployable"),
    Row("a tag that is not a known release", "9.9.9", "unknown: not a known release"),
    Row("the deployed version itself", "1.0.0", "deployed"),
    Row(
        "a release not after the deployed version",
        "1.0.0",
        "not after the deployed version 1.1.0",
        {"deployed": "1.1.0"},
    ),
    Row(
        "withdrawn: after the tag the ImagePolicy announces",
        "1.3.0",
        "withdrawn: after the tag the ImagePolicy announces",
        {"announced": "1.2.0"},
    ),
    Row("pinned: no automatic deploys", "1.3.0", "pinned: spec.wantedVersion is 1.0.0", {"pinned": "1.0.0"}),
    Row("suspended", "1.3.0", "suspended", {"suspended": True}),
    Row("a running bake waits", "1.3.0", "waiting for the bake of 1.0.0", {"head_state": "InProgress"}),
    Row("a failed bake blocks without unblock-failed", "1.3.0", "bake failed", {"head_state": "Failed"}),
    Row(
        "a failed bake with a fresh unblock-failed",
        "1.3.0",
        "deployable",
        {"head_state": "Failed", "unblock": True},
    ),
    Row("held: not after hold.resumeAfter", "1.2.0", "held: waits for a release after 1.2.0", {"hold": HOLD}),
    Row("a release after hold.resumeAfter passes the hold", "1.3.0", "deployable", {"hold": HOLD}),
    Row(
        "bypass-gates passes the hold for its release",
        "1.1.0",
        "deployable",
        {"hold": HOLD, "bypass": "1.1.0"},
    ),
    Row(
        "a gate that is not passing",
        "1.3.0",
        "gated: gate 'freeze' is not passing",
        {"gates": [Gate("freeze", False, None)]},
    ),
    Row(
        "allowedVersions leaves the tag out",
        "1.3.0",
        "not allowed by gate 'canary'",
        {"gates": [Gate("canary", True, ["1.2.0"])]},
    ),
    Row(
        "first deploy: failing gates do not block",
        "1.3.0",
        "deployable",
        {"first": True, "deployed": None, "head_state": None, "gates": [Gate("freeze", False, None)]},
    ),
    Row(
        "first deploy: allowedVersions applies unless it leaves nothing",
        "1.3.0",
        "deployable",
        {"first": True, "deployed": None, "head_state": None, "gates": [Gate("canary", True, ["9.9.9"])]},
    ),
    Row(
        "unhealthy checks block",
        "1.3.0",
        "unhealthy: HealthCheck 'smoke' in namespace 'shop' is not healthy",
        {"unhealthy": "HealthCheck 'smoke' in namespace 'shop' is not healthy"},
    ),
    Row(
        "a bypass elsewhere: the other candidates are not chosen",
        "1.3.0",
        "not chosen: bypass-gates names 1.2.0",
        {"bypass": "1.2.0"},
    ),
    Row(
        "a deployed tag that cannot be ordered has no candidates",
        "1.3.0",
        "automatic deploys cannot order hotfix",
        {"deployed": "hotfix"},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_reason(row: Row) -> None:
    assert choose.reasons(situation(**row.overrides), [row.tag]) == {row.tag: row.want}


def test_filtered_tags_are_never_automatic_candidates() -> None:
    policy = Policy("alphabetical", filter=TagFilter(compile_filter(r"^main-"), ""))
    sit = situation(
        ordering=order(["main-a", "pr-7", "main-b"], policy),
        known=frozenset(["main-a", "pr-7", "main-b"]),
        deployed="main-a",
        announced="main-b",
    )
    assert choose.reasons(sit, ["pr-7", "main-b"]) == {
        "pr-7": "filtered: filterTags does not match",
        "main-b": "deployable",
    }


def test_choose_deploys_the_best_deployable_candidate() -> None:
    sit = situation(gates=[Gate("canary", True, ["1.1.0", "1.2.0"])])
    choice = choose.choose(sit, Annotations({}, {}))
    assert choice.deploy is not None and choice.deploy.tag == "1.2.0"
    assert choice.explain == {
        "1.3.0": "not allowed by gate 'canary'",
        "1.2.0": "deployable",
        "1.1.0": "deployable",
    }


def test_a_pin_and_a_force_deploy_are_manual_and_the_pin_wins() -> None:
    ann = Annotations({"rollout.kuberik.com/force-deploy": "1.2.0@1"}, {})
    assert choose.choose(situation(), ann).deploy == choose.Deploy(
        "1.2.0", choose.Trigger.FORCE_DEPLOY, forced=True
    )
    pinned = choose.choose(situation(pinned="1.1.0"), ann).deploy
    assert pinned is not None and (pinned.tag, pinned.trigger) == ("1.1.0", "Pin")
    unknown = Annotations({"rollout.kuberik.com/force-deploy": "bad tag"}, {})
    assert choose.choose(situation(), unknown).outcome == "force-unknown"
