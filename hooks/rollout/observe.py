"""The observe step (docs rollout.md): validation, discovery, order, and what the request holds."""

from __future__ import annotations

from hooks.api.rollout import ConditionType, Reason
from hooks.k8s import annotations_of, get_condition, meta
from hooks.rollout import conditions, gates, health, history, holds, ordering, promotion, releases, targets
from hooks.rollout.annotations import Annotations
from hooks.rollout.run import Invalid, Run
from hooks.rollout.spec import InvalidSpec, parse_spec


def observe(run: Run) -> None:
    """§3.1 validation, §3.2 discovery, §3.3 order; the gates, checks and targets; the history."""
    rollout, previous = run.req.parent, run.ev.previous
    md = meta(rollout)
    run.name, run.namespace = str(md.get("name")), str(md.get("namespace", ""))
    try:
        run.spec = parse_spec(rollout)
    except InvalidSpec as error:
        _invalid(run, str(error))
        raise Invalid from None
    run.ev.interval = run.s.update_interval
    _releases(run)
    if run.upstream is not None and run.upstream.cycles:
        refs = ", ".join(s.ref for s in run.upstream.cycles)
        _invalid(run, f"spec.promotion.from: Rollout {refs} promotes from this Rollout (a direct cycle)")
        raise Invalid
    run.checks = health.select(
        run.req.related_of("HealthCheck"), run.s.health, run.namespace, run.req.related_of("Namespace")
    )
    run.unhealthy = health.unhealthy_message(run.checks)
    run.gates = gates.gates_for(run.req.related_of("RolloutGate"), run.name, run.namespace)
    run.fields = targets.find(
        run.req.related_of("OCIRepository"), run.req.related_of("Kustomization"), run.name, run.namespace
    )
    run.ann = Annotations.read(annotations_of(rollout), previous.get("acknowledgedAnnotations"))
    run.hist = history.clean_history(previous.get("history"))
    run.persisted_deployed = history.deployed_tag(run.hist)
    run.hold = holds.read(previous.get("hold"))
    old = get_condition(previous.get("conditions"), ConditionType.BAKE_FAILURE_DISABLED)
    run.in_recovery = bool(old and old.get("status") == "True")


def _releases(run: Run) -> None:
    """The known releases and their order: announced by the ImagePolicy, or, without one, the
    upstreams' verified tags as they are first seen (docs/promotion.md)."""
    known = releases.clean_releases(run.ev.previous.get("availableReleases"))
    if run.s.image_policy is not None:
        name = run.s.image_policy
        policy = releases.find_image_policy(run.req.related_of("ImagePolicy"), name, run.namespace)
        run.discovery = releases.discover(policy, name)
        declared = ordering.policy_of(policy)
        run.known = releases.record(known, run.discovery, run.now)
        run.order = ordering.order([r["tag"] for r in run.known], declared)
        if run.s.promotion is not None:
            run.upstream = _upstreams(run)
    else:
        declared = ordering.NO_POLICY
        run.known = releases.record(known, releases.NOTHING_ANNOUNCED, run.now)
        run.order = ordering.order([r["tag"] for r in run.known], declared)
        for _ in range(3):  # a newly recorded tag can change the order verification uses
            run.upstream = _upstreams(run)
            seen = [(t, run.upstream.digest(t)) for t in reversed(run.upstream.releases())]
            grown = releases.record_verified(run.known, seen, run.now)
            if len(grown) == len(run.known):
                break
            run.known = grown
            run.order = ordering.order([r["tag"] for r in run.known], declared)
        refs = [source.ref for source in run.s.promotion.sources] if run.s.promotion else []
        run.discovery = releases.from_upstreams(refs, run.order.best())
    run.policy_error = declared.error


def _upstreams(run: Run) -> promotion.Observation:
    """Read the upstreams from the related Rollouts (a self-reference brings the parent along: skipped)."""
    assert run.s.promotion is not None
    me = promotion.Source(run.name, run.namespace)
    others = [r for r in run.req.related_of("Rollout") if _ref(r) != (me.namespace, me.name)]
    return promotion.observe(
        run.s.promotion, me, others, run.req.related_of("Namespace"), now=run.now, is_lower=run.order.is_lower
    )


def _ref(obj: dict) -> tuple[str, str]:
    md = meta(obj)
    return str(md.get("namespace", "")), str(md.get("name", ""))


def _invalid(run: Run, message: str) -> None:
    """docs/spec/v1alpha1/rollout.md: keep every status field, say what is wrong, deploy nothing."""
    c = conditions.Conditions(run.ev.previous.get("conditions"), run.ev.generation, run.now)
    conditions.ready(c, conditions.ReadyFacts(invalid=message))
    conditions.stalled(c, Reason.INVALID_SPEC, message)
    run.ev.status = dict(run.ev.previous)
    run.ev.status["conditions"] = c.merged()
    run.ev.invalid = True
    run.ev.log["decision"] = "invalid-spec"
