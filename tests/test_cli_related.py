"""The CLI's Metacontroller part: related objects selected and keyed as a v2 request does."""

from __future__ import annotations

import pytest

from hooks.cli import engine
from hooks.cli.kube import Kube, load_config
from hooks.cli.related import list_live, select_offline
from hooks.k8s import selector_matches
from tests.fakekube import FakeKube


def check(name: str, namespace: str, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "HealthCheck",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"class": "external"},
        "status": {"status": "Healthy", "lastChangeTime": "2026-03-02T09:00:00Z"},
    }


def namespace(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


CHECKS = [
    check("a", "shop", {"app": "web", "tier": "front"}),
    check("b", "shop", {"app": "web", "tier": "back", "canary": "yes"}),
    check("c", "shop", {"app": "api"}),
    check("d", "shop", {}),
]


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "web"}},
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "middle"]}]},
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]},
        {"matchExpressions": [{"key": "canary", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}],
        },
        {},
    ],
)
def test_server_side_selection_equals_the_kubernetes_rules(fake_kube: FakeKube, selector: dict) -> None:
    """The selector goes to the API server as `labelSelector`; what comes back is what the
    label-selector rules select (hooks.k8s.selector_matches, tested against Kubernetes')."""
    for obj in CHECKS:
        fake_kube.put(obj)
    listed = Kube(load_config()).list("HealthCheck", "shop", selector)
    expected = [o["metadata"]["name"] for o in CHECKS if selector_matches(selector, o["metadata"]["labels"])]
    assert [o["metadata"]["name"] for o in listed] == expected


def cross_namespace_rollout() -> dict:
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"rollout.kuberik.com/cross-namespace-health": "true"},
        },
        "spec": {
            "releasesImagePolicy": {"name": "web"},
            "healthCheckSelector": {
                "selector": {"matchLabels": {"app": "web"}},
                "namespaceSelector": {
                    "matchLabels": {"rollout.kuberik.com/shared-health-checks": "true"},
                },
            },
        },
    }


POOL = [
    namespace("shop", {}),
    namespace("slo", {"rollout.kuberik.com/shared-health-checks": "true"}),
    namespace("other", {}),
    check("web", "shop", {"app": "web"}),
    check("web-slo", "slo", {"app": "web"}),
    check("web-other", "other", {"app": "web"}),
]


def test_a_namespace_selector_rule_spans_the_namespaces_it_selects(fake_kube: FakeKube) -> None:
    """Live (under the user's credentials) and offline (from files) select the same objects."""
    rollout = cross_namespace_rollout()
    rules = engine.rollout_rules(rollout)
    offline = select_offline(rules, POOL, "shop")
    for obj in POOL:
        fake_kube.put(obj)
    live = list_live(Kube(load_config()), rules, "shop")
    group = "HealthCheck.kuberik.com/v1alpha1"
    assert set(offline[group]) == set(live[group])
    # Metacontroller lists the namespaces the rule's namespaceSelector picks (narrowed to those
    # that opted in) and looks there, plus the Rollout's own namespace, where the sync applies
    # the namespaceSelector itself (docs/tenancy.md).
    assert set(live[group]) == {"shop/web", "slo/web-slo"}
    assert {k: set(v) for k, v in offline.items()} == {k: set(v) for k, v in live.items()}
