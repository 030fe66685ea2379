"""Actuation faults through the real route and the real actuator, against the fake API server.

Each test keeps a small "cluster": the Flux objects live in the fake API server (tests/fakekube.py),
every /rollout/sync request is built from what the server holds (as Metacontroller's cache would
show it), and the status the hook returns is persisted only when the test says the status write
succeeded. This way a crash between the status write and the patch is a replay with the old or
the new persisted status.

Slow tests (a server answering near or past the 3 s call bound) are kept to two.
"""

from __future__ import annotations

import copy
import os
import socket
import time
from datetime import timedelta
from typing import Any

import pytest

from hooks.actuator import Actuator
from hooks.app import create_app
from hooks.k8s import get_condition
from tests import flux_objects as flux
from tests.crd_schema import errors_of, validator
from tests.fakekube import FakeKube, write_kubeconfig
from tests.flux_objects import NS, T0, ts

SCHEMA = validator("Rollout", part="status")


def oci() -> dict:
    """The OCIRepository as source-controller left it: Ready for 1.0.0 (generation 2)."""
    return flux.ready(flux.ocirepository("manifests", "1.0.0", generation=2), "1.0.0", T0 - timedelta(days=1))


def kustomization() -> dict:
    """The Kustomization sourced from it, which applied 1.0.0's artifact."""
    obj = flux.kustomization(
        "app",
        annotations={"rollout.kuberik.com/substitute.APP_VERSION.from": "app"},
        substitute={"APP_VERSION": "1.0.0", "REGION": "eu"},
        generation=3,
    )
    return flux.ready(obj, "1.0.0", T0 - timedelta(days=1))


DEPLOYED_1_0_0 = {
    "availableReleases": [{"tag": "1.0.0", "discoveredAt": ts(T0 - timedelta(days=1))}],
    "history": [
        {
            "id": 1,
            "version": {"tag": "1.0.0", "discoveredAt": ts(T0 - timedelta(days=1))},
            "timestamp": ts(T0 - timedelta(days=1)),
            "message": "Automatic deployment",
            "triggeredBy": {"kind": "System", "name": "rollout-controller"},
            "bakeStatus": "Succeeded",
            "bakeStatusMessage": "No bake configured.",
        }
    ],
}


class Cluster:
    """The fake API server, an ImagePolicy announcing releases, and the persisted Rollout status."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.now = T0
        self.latest = "1.0.0"
        self.status: dict = copy.deepcopy(DEPLOYED_1_0_0)
        self.persisted: list[dict] = [copy.deepcopy(self.status)]  # every status ever written
        kube.put(oci())
        kube.put(kustomization())
        self.actuator = Actuator.from_env(os.environ)
        self.client = create_app(clock=lambda: self.now, actuator=self.actuator).test_client()

    def close(self) -> None:
        self.actuator.close()

    def objects(self) -> dict[str, dict]:
        return {
            "OCIRepository": self.kube.get("OCIRepository", NS, "manifests") or {},
            "Kustomization": self.kube.get("Kustomization", NS, "app") or {},
        }

    def request(self, status: dict | None = None, objects: dict[str, dict] | None = None) -> dict:
        seen = objects or self.objects()
        return {
            "controller": {"metadata": {"name": "rollouts.kuberik.com"}},
            "parent": {
                "apiVersion": "kuberik.com/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": "app", "namespace": NS, "generation": 1, "annotations": {}},
                "spec": {"releasesImagePolicy": {"name": "app"}},
                "status": copy.deepcopy(self.status if status is None else status),
            },
            "children": {},
            "related": {
                "ImagePolicy.image.toolkit.fluxcd.io/v1": {
                    f"{NS}/app": {
                        "apiVersion": "image.toolkit.fluxcd.io/v1",
                        "kind": "ImagePolicy",
                        "metadata": {"name": "app", "namespace": NS},
                        "spec": {
                            "imageRepositoryRef": {"name": "app"},
                            "policy": {"semver": {"range": ">=0"}},
                        },
                        "status": {"latestRef": {"name": "ghcr.io/acme/app", "tag": self.latest}},
                    }
                },
                "OCIRepository.source.toolkit.fluxcd.io/v1": {f"{NS}/manifests": seen["OCIRepository"]},
                "Kustomization.kustomize.toolkit.fluxcd.io/v1": {f"{NS}/app": seen["Kustomization"]},
            },
        }

    def sync(self, status: dict | None = None, objects: dict | None = None, write: bool = True) -> dict:
        """One sync; `write=False` simulates a status write that never happened (a crash)."""
        response = self.client.post("/rollout/sync", json=self.request(status, objects))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert not errors_of(SCHEMA, body["status"])
        if write:
            self.status = body["status"]
            self.persisted.append(copy.deepcopy(body["status"]))
        self.assert_never_ahead()
        return body

    def assert_never_ahead(self) -> None:
        """Every Flux object carries a version the persisted history already records."""
        recorded = {h["version"]["tag"] for s in self.persisted for h in s.get("history", [])}
        objects = self.objects()
        assert objects["OCIRepository"]["spec"]["ref"]["tag"] in recorded
        assert objects["Kustomization"]["spec"]["postBuild"]["substitute"]["APP_VERSION"] in recorded
        assert objects["Kustomization"]["spec"]["postBuild"]["substitute"]["REGION"] == "eu"

    def flux_reconciles(self) -> None:
        """source-controller, then kustomize-controller, finish the generation they were given."""
        repo = self.kube.get("OCIRepository", NS, "manifests")
        assert repo is not None
        tag = repo["spec"]["ref"]["tag"]
        self.kube.put(flux.ready(repo, tag, self.now))
        app = self.kube.get("Kustomization", NS, "app")
        assert app is not None
        self.kube.put(flux.ready(app, tag, self.now))

    def tags(self) -> tuple[str, str]:
        objects = self.objects()
        return (
            objects["OCIRepository"]["spec"]["ref"]["tag"],
            objects["Kustomization"]["spec"]["postBuild"]["substitute"]["APP_VERSION"],
        )


def condition(status: dict, type_: str) -> tuple[str, str]:
    cond = get_condition(status.get("conditions"), type_)
    assert cond is not None
    return cond["status"], cond["reason"]


def states(status: dict) -> list[tuple[str, str]]:
    """(kind, state) of the substitute, the applied revision (read-only) and the tag entries."""
    return [(t["kind"], t["state"]) for t in status["targets"]]


def by_field(status: dict) -> dict[str, dict]:
    return {t["field"]: t for t in status["targets"]}


def failing(status: dict) -> list[dict]:
    return [t for t in status["targets"] if t["state"] == "Error"]


PENDING3 = [("Kustomization", "Pending"), ("Kustomization", "Pending"), ("OCIRepository", "Pending")]
APPLYING3 = [("Kustomization", "Applying"), ("Kustomization", "Applying"), ("OCIRepository", "Applying")]
SYNCED3 = [("Kustomization", "Synced"), ("Kustomization", "Synced"), ("OCIRepository", "Synced")]


@pytest.fixture
def cluster(fake_kube):
    world = Cluster(fake_kube)
    yield world
    world.close()


def decided(cluster: Cluster) -> dict:
    """A new release is announced and recorded (write-ahead: no patch yet)."""
    cluster.latest = "1.1.0"
    body = cluster.sync()
    assert cluster.status["history"][0]["version"]["tag"] == "1.1.0"
    assert cluster.kube.patches() == [], "a patch before the decision was persisted"
    assert states(cluster.status) == PENDING3
    return body


# --- the happy path and the crash windows -------------------------------------------------


def test_decision_then_patch_then_synced(cluster):
    decided(cluster)
    cluster.sync()  # the decision is persisted: now the patches go out
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert len(cluster.kube.patches()) == 2
    cluster.sync()  # Metacontroller sees the objects change; Flux has not reconciled them yet
    assert states(cluster.status) == APPLYING3
    assert condition(cluster.status, "TargetsSynced") == ("False", "TargetsPending")
    cluster.flux_reconciles()
    body = cluster.sync()
    assert states(cluster.status) == SYNCED3
    assert condition(cluster.status, "TargetsSynced") == ("True", "AllTargetsSynced")
    assert condition(cluster.status, "Ready") == ("True", "Deployed")
    assert body["resyncAfterSeconds"] == 300
    assert len(cluster.kube.patches()) == 2, "nothing left to patch"


def test_crash_before_the_status_write_patches_nothing(cluster):
    """The hook decided 1.1.0 but Metacontroller crashed before writing it: replays with the old
    status decide again and never touch the Flux objects."""
    cluster.latest = "1.1.0"
    old = copy.deepcopy(cluster.status)
    first = cluster.sync(write=False)
    for _ in range(3):
        again = cluster.sync(status=old, write=False)
        assert again == first
    assert cluster.kube.patches() == []
    assert cluster.tags() == ("1.0.0", "1.0.0")
    # the write finally succeeds; the next sync patches
    cluster.status = first["status"]
    cluster.persisted.append(copy.deepcopy(first["status"]))
    cluster.sync()
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert [h["version"]["tag"] for h in cluster.status["history"]] == ["1.1.0", "1.0.0"]


def test_crash_after_the_patch_replays_safely(cluster):
    """Patched, then the answer is lost (the Pending status is never written) and a replay comes
    with the persisted status and objects as the cache still shows them."""
    decided(cluster)
    stale = cluster.objects()
    persisted = copy.deepcopy(cluster.status)
    cluster.sync(write=False)  # patches sent and applied; this answer is lost
    assert cluster.tags() == ("1.1.0", "1.1.0")
    # replay with the stale view: the guarded patches fail their test, nothing is overwritten
    replay = cluster.sync(status=persisted, objects=stale)
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert states(replay["status"]) == PENDING3
    assert condition(replay["status"], "Ready") == ("True", "Deployed")
    # the cache catches up and Flux applies: synced, history intact
    cluster.sync()
    assert states(cluster.status) == APPLYING3
    cluster.flux_reconciles()
    cluster.sync()
    assert states(cluster.status) == SYNCED3
    assert [h["version"]["tag"] for h in cluster.status["history"]] == ["1.1.0", "1.0.0"]


def test_an_old_status_replayed_after_the_patch_never_moves_objects_back(cluster):
    decided(cluster)
    old = copy.deepcopy(cluster.persisted[0])
    cluster.sync()  # patched to 1.1.0
    replay = cluster.sync(status=old, write=False)  # a stale cache delivers the status before 1.1.0
    assert [h["version"]["tag"] for h in replay["status"]["history"]] == ["1.1.0", "1.0.0"]
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert all(p.body[-1]["value"] != "1.0.0" for p in cluster.kube.patches() if isinstance(p.body, list))


# --- API errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        (401, "unauthorized: "),
        (403, "forbidden: "),
        (404, "not found: "),
        (429, "API server error 429: "),
        (500, "API server error 500: "),
        (503, "API server error 503: "),
    ],
)
def test_api_errors_surface_as_error_state(cluster, code, prefix):
    decided(cluster)
    cluster.kube.fail(code)
    body = cluster.sync()
    status = cluster.status
    assert states(status) == [
        ("Kustomization", "Error"),
        ("Kustomization", "Pending"),
        ("OCIRepository", "Error"),
    ]
    for target in failing(status):
        assert target["message"].startswith(prefix), target["message"]
        assert target["errorSince"] == ts(cluster.now)
    assert condition(status, "TargetsSynced") == ("False", "TargetsFailing")
    assert condition(status, "Ready") == ("False", "TargetsFailing")
    assert body["resyncAfterSeconds"] == 10
    assert cluster.tags() == ("1.0.0", "1.0.0")
    assert [h["version"]["tag"] for h in status["history"]] == ["1.1.0", "1.0.0"], "deployment kept"
    # a fixed point while the error lasts
    assert cluster.sync(write=False) == body


TEST_FAILED = {
    "causes": [
        {"reason": "UnexpectedServerResponse", "message": "testing value /spec/ref/tag failed: test failed"}
    ]
}


@pytest.mark.parametrize(("code", "details"), [(409, None), (422, TEST_FAILED)])
def test_conflicts_are_pending_and_replanned(cluster, code, details):
    decided(cluster)
    message = "the server rejected our request due to an error in our request" if code == 422 else None
    cluster.kube.fail(code, times=2, message=message, details=details)
    cluster.sync()
    assert states(cluster.status) == PENDING3
    assert condition(cluster.status, "Ready") == ("True", "Deployed")
    assert condition(cluster.status, "TargetsSynced") == ("False", "TargetsPending")
    assert cluster.tags() == ("1.0.0", "1.0.0")
    cluster.sync()  # re-planned from what is observed now
    assert cluster.tags() == ("1.1.0", "1.1.0")


def test_connection_refused_is_an_error(cluster, tmp_path, monkeypatch):
    decided(cluster)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_kubeconfig(tmp_path / "refused-kubeconfig", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KUBECONFIG", str(path))
    cluster.actuator.close()
    cluster.actuator = Actuator.from_env(os.environ)
    cluster.client = create_app(clock=lambda: cluster.now, actuator=cluster.actuator).test_client()
    body = cluster.sync()
    assert len(failing(cluster.status)) == 2
    for target in failing(cluster.status):
        assert target["message"].startswith("cannot reach the Kubernetes API"), target["message"]
    assert condition(cluster.status, "Ready") == ("False", "TargetsFailing")
    assert body["resyncAfterSeconds"] == 10


def test_no_credentials_is_an_error(cluster, tmp_path, monkeypatch):
    decided(cluster)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    cluster.actuator.close()
    cluster.actuator = Actuator.from_env(os.environ)
    cluster.client = create_app(clock=lambda: cluster.now, actuator=cluster.actuator).test_client()
    cluster.sync()
    assert len(failing(cluster.status)) == 2
    for target in failing(cluster.status):
        assert target["message"].startswith("no usable Kubernetes credentials"), target["message"]


OCI_PATH = "/apis/source.toolkit.fluxcd.io/v1/namespaces/shop/ocirepositories/manifests"


def test_a_call_past_the_deadline_times_out_within_the_bound(cluster):
    decided(cluster)
    cluster.kube.fail(delay=10, path=OCI_PATH, times=1)  # far past the bound: it must not wait
    started = time.monotonic()
    body = cluster.sync()
    elapsed = time.monotonic() - started
    fields = by_field(cluster.status)
    assert (fields["spec.ref.tag"]["state"], fields["spec.ref.tag"]["message"]) == (
        "Error",
        "timed out after 3s",
    )
    assert fields["spec.postBuild.substitute.APP_VERSION"]["state"] == "Pending", "the other one is patched"
    assert condition(cluster.status, "Ready") == ("False", "TargetsFailing")
    assert body["resyncAfterSeconds"] == 10
    assert 2.9 < elapsed < 4.5, elapsed


def test_a_slow_answer_near_the_deadline_is_applied(cluster):
    decided(cluster)
    cluster.kube.fail(delay=2.5, path=OCI_PATH, times=1)
    cluster.sync()
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert condition(cluster.status, "TargetsSynced") == ("False", "TargetsPending")
    assert condition(cluster.status, "Ready") == ("True", "Deployed")


# --- back-off and recovery -----------------------------------------------------------------


def test_errors_back_off_doubling_up_to_five_minutes_then_recover(cluster):
    decided(cluster)
    cluster.kube.fail(500)
    delays = []
    first_error = cluster.now
    for _ in range(9):
        body = cluster.sync()
        delays.append(body["resyncAfterSeconds"])
        assert {t["errorSince"] for t in failing(cluster.status)} == {ts(first_error)}
        assert condition(cluster.status, "Ready") == ("False", "TargetsFailing")
        cluster.now += timedelta(seconds=body["resyncAfterSeconds"])
    assert delays == [10, 10, 20, 40, 80, 160, 300, 300, 300]
    assert [h["version"]["tag"] for h in cluster.status["history"]] == ["1.1.0", "1.0.0"]

    cluster.kube.clear_faults()
    body = cluster.sync()  # the API answers again: patched
    assert cluster.tags() == ("1.1.0", "1.1.0")
    assert all("errorSince" not in t for t in cluster.status["targets"])
    assert condition(cluster.status, "Ready") == ("True", "Deployed")
    cluster.sync()
    assert states(cluster.status) == APPLYING3
    cluster.flux_reconciles()
    cluster.sync()
    assert states(cluster.status) == SYNCED3
    assert condition(cluster.status, "TargetsSynced") == ("True", "AllTargetsSynced")


def test_one_failing_object_does_not_hold_back_the_other(cluster):
    decided(cluster)
    failing = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shop/kustomizations/app"
    cluster.kube.fail(403, path=failing)
    body = cluster.sync()
    fields: dict[str, Any] = by_field(cluster.status)
    assert fields["spec.postBuild.substitute.APP_VERSION"]["state"] == "Error"
    assert fields["spec.ref.tag"]["state"] == "Pending"
    assert cluster.tags() == ("1.1.0", "1.0.0")
    assert body["resyncAfterSeconds"] == 10
    cluster.sync()
    cluster.flux_reconciles()  # the artifact is fetched and applied, with the old substitute
    cluster.sync()
    fields = by_field(cluster.status)
    assert fields["spec.ref.tag"]["state"] == "Synced"
    assert fields["status.lastAppliedRevision"]["state"] == "Synced"
    assert fields["spec.postBuild.substitute.APP_VERSION"]["state"] == "Error"


def proxy_page(request_id: str, date: str) -> bytes:
    """A 502 page from a proxy in front of the API server: different on every answer."""
    return (
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
        f"<p>upstream request {request_id} failed at {date}</p><hr>envoy</body></html>"
    ).encode()


def test_an_outage_with_html_error_pages_leaves_the_status_a_fixed_point(cluster):
    """docs/service.md: outside texts are bounded and free of volatile parts, so the status does not
    change on every sync while the API server is behind a failing proxy."""
    decided(cluster)
    seen = []
    for i in range(3):
        cluster.kube.clear_faults()
        cluster.kube.fail(502, raw=proxy_page(f"req-{i}-{i * 7919:x}", f"Mon, 02 Mar 2026 09:0{i}:00 GMT"))
        body = cluster.sync(write=False)
        seen.append(body)
    assert seen[0] == seen[1] == seen[2]
    errors = failing(seen[0]["status"])
    assert [t["message"] for t in errors] == [
        "API server error 502: HTTP 502 with a non-Status body (text/html)"
    ] * 2
    assert {t["errorSince"] for t in errors} == {ts(cluster.now)}
    assert condition(seen[0]["status"], "TargetsSynced") == ("False", "TargetsFailing")
    assert cluster.tags() == ("1.0.0", "1.0.0")
