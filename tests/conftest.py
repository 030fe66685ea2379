"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.fakekube import FAKE_TOKEN, FakeKube, write_kubeconfig

# Authentication fails closed (docs/service.md): tests that build the app from the environment run
# without a token, like `make run`. Tests of the token pass their own environ.
os.environ.setdefault("HOOK_AUTH_DISABLED", "true")

#: Environment that would steer the Kubernetes client elsewhere (a real cluster, a proxy).
_FOREIGN_ENV = (
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "ROLLOUT_ACTUATION",
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
)


@pytest.fixture
def fake_kube(tmp_path, monkeypatch) -> Iterator[FakeKube]:
    """A running fake API server, reachable through a temporary kubeconfig in $KUBECONFIG."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    server = FakeKube(token=FAKE_TOKEN).start()
    path = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    monkeypatch.setenv("KUBECONFIG", str(path))
    try:
        yield server
    finally:
        server.stop()


# Hypothesis profiles: "ci" (default) is bounded and reproducible; HYPOTHESIS_PROFILE=long
# searches much further for local runs (property modules scale their example counts with it).
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
