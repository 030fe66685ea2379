"""Healthy only for the deployed revision (docs/targets.md).

A Kustomization that is still Ready on the previous version must not start the bake of
the new one. So it counts as Healthy only when it carries the deployed version of every
selecting Rollout that drives it: each substitute variable such a Rollout drives equals
its deployed tag, and, when its source is an OCIRepository such a Rollout drives, the
applied revision is `<tag>@<digest>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hooks.healthcheck.selection import object_key
from hooks.k8s import annotations_of, dig
from hooks.rollout import history
from hooks.rollout.targets import ROLLOUT_ANNOTATION, driven_substitutes


def deployed_tag(rollout: Mapping) -> str | None:
    """The Rollout's deployed version (history.deployed_tag); None when nothing was deployed."""
    entries = dig(rollout, "status", "history")
    return history.deployed_tag(entries) or None if isinstance(entries, list) else None


def source_ref(kustomization: Mapping) -> tuple[str, str] | None:
    """(namespace, name) of the Kustomization's OCIRepository source, if that is its source."""
    ref = dig(kustomization, "spec", "sourceRef")
    if not isinstance(ref, Mapping) or ref.get("kind") != "OCIRepository" or not ref.get("name"):
        return None
    return (str(ref.get("namespace") or object_key(kustomization)[0]), str(ref["name"]))


def drives_source(rollout: Mapping, source: tuple[str, str], repositories: Iterable[Mapping]) -> bool:
    """Whether the Rollout drives the OCIRepository `source` (in the Rollout's namespace).

    Known from the repository's annotation when it was delivered, else from the Rollout's own
    status.targets, which also covers a source in another namespace than the Kustomization.
    """
    rollout_namespace, rollout_name = object_key(rollout)
    if source[0] != rollout_namespace:
        return False
    for repository in repositories:
        if object_key(repository) == source:
            return annotations_of(repository).get(ROLLOUT_ANNOTATION) == rollout_name
    targets = dig(rollout, "status", "targets")
    return isinstance(targets, list) and any(
        isinstance(t, Mapping) and t.get("kind") == "OCIRepository" and t.get("name") == source[1]
        for t in targets
    )


def awaited_tag(
    kustomization: Mapping, repositories: Iterable[Mapping], rollouts: Iterable[Mapping]
) -> str | None:
    """The first deployed tag (Rollouts in namespace/name order) the Kustomization does not carry yet."""
    namespace = object_key(kustomization)[0]
    substitutes = dig(kustomization, "spec", "postBuild", "substitute")
    substitutes = substitutes if isinstance(substitutes, Mapping) else {}
    repositories = list(repositories)
    source = source_ref(kustomization)
    applied = dig(kustomization, "status", "lastAppliedRevision")
    for rollout in sorted(rollouts, key=object_key):
        rollout_namespace, rollout_name = object_key(rollout)
        tag = deployed_tag(rollout)
        if tag is None:
            continue
        # a Rollout only drives Flux objects of its own namespace
        if rollout_namespace == namespace and any(
            substitutes.get(var) != tag
            for var in driven_substitutes(annotations_of(kustomization), rollout_name)
        ):
            return tag
        if (
            source is not None
            and drives_source(rollout, source, repositories)
            and not (isinstance(applied, str) and applied.startswith(f"{tag}@"))
        ):
            return tag
    return None
