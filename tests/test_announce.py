"""Events and Flux notifications against the fake Kubernetes API and a fake
notification-controller on 127.0.0.1 (docs/events-and-metrics.md): write-ahead, exactly once across replays,
duplicated syncs and replicas, nothing old, nothing in dry-run, refusals never fail a sync."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hooks.actuator import Actuator
from hooks.announce import Announcer
from hooks.app import create_app
from tests.fakekube import EVENTS_PATH, FakeKube
from tests.rollout_world import NS, T0, World, ts

UID = "0b6f1f7e-8a3c-4a1e-b2b1-6f1c2d3e4f50"
EVENTS = EVENTS_PATH.format(namespace=NS)


class FakeNotificationController:
    """notification-controller's event server: POST / with a Flux event, 202 Accepted; an
    identical event (object, message, `<group>/revision`, `<group>/token`) within its
    rate-limit interval is answered 429 and not dispatched, as notification-controller does."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.duplicates = 0
        self._seen: set[tuple] = set()
        self.status = 202
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(raw)
                obj = event["involvedObject"]
                group = obj["apiVersion"].partition("/")[0]
                meta = event.get("metadata") or {}
                key = (obj["name"], obj["namespace"], obj["kind"], event["message"])
                key += (meta.get(f"{group}/revision"), meta.get(f"{group}/token"))
                with fake._lock:
                    status = fake.status
                    if status == 202 and key in fake._seen:
                        status = 429
                        fake.duplicates += 1
                    elif status == 202:
                        fake._seen.add(key)
                        fake.received.append(event)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02})
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def notification_controller() -> Iterator[FakeNotificationController]:
    server = FakeNotificationController()
    try:
        yield server
    finally:
        server.stop()


class EventsWorld(World):
    """The Rollout syncs with the real actuator and announcer against the fake API server."""

    kube: FakeKube
    announcer: Announcer
    uid: str = UID

    def rollout(self) -> dict:
        obj = super().rollout()
        obj["metadata"]["uid"] = self.uid
        return obj

    def post(self, body: Any, path: str = "/rollout/sync") -> Any:
        if self._client is None:
            app = create_app(clock=lambda: self.now, actuator=self.actuator, announcer=self.announcer)
            self._client = app.test_client()
        return self._client.post(path, json=body)

    def publish(self) -> None:
        for obj in self.ocirepos.values():
            self.kube.put(obj)
        self.kube.put(self.rollout())

    def observe(self) -> None:
        for name in self.ocirepos:
            self.ocirepos[name] = self.kube.get("OCIRepository", NS, name)

    def flux_catches_up(self) -> None:
        """source-controller reconciles what the API server holds (the bake waits for it)."""
        self.observe()
        self.flux_reconciles()
        for obj in self.ocirepos.values():
            self.kube.put(obj)

    def once(self) -> dict:
        """One sync whose returned status is persisted (as Metacontroller would)."""
        self.observe()
        return super().sync(check_fixed_point=False)


def events_world(fake_kube: FakeKube, flux: str | None = None, mode: str = "apply", **kwargs) -> EventsWorld:
    world = EventsWorld(**kwargs)
    world.kube = fake_kube
    env = {**os.environ, "ROLLOUT_ACTUATION": mode}
    world.actuator = Actuator.from_env(env)
    world.announcer = Announcer(mode, env=env, flux_address=flux)
    return world


def second_replica(world: EventsWorld, flux: str | None = None) -> EventsWorld:
    """Another hook replica: its own actuator, announcer and memory, the same cluster."""
    other = events_world(world.kube, flux, spec=world.spec, now=world.now)
    other.status, other.policy, other.ocirepos = world.status, world.policy, world.ocirepos
    return other


def reasons(kube: FakeKube) -> list[str]:
    return [e["reason"] for e in kube.events(NS)]


def test_facts_are_announced_once_persisted_and_once_only(fake_kube):
    world = events_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()

    world.once()  # decides the first deploy: not persisted yet when the sync runs
    assert fake_kube.events(NS) == [], "nothing is announced before Metacontroller persisted it"

    world.once()  # sees entry 1 persisted
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]
    [deployed, _] = fake_kube.events(NS)
    assert deployed["regarding"] == {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "name": "app",
        "namespace": NS,
        "uid": UID,
    }
    assert deployed["type"] == "Normal" and deployed["action"] == "Deploy"
    assert deployed["reportingController"] == "kuberik.com/rollout-controller"
    assert deployed["eventTime"] == T0.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    # the OCIRepository already carries 1.0.0: entry 1 is an adoption (docs/spec/v1alpha1/rollout.md)
    assert deployed["note"].startswith("Adopted: the targets already carry 1.0.0")

    creates = len(fake_kube.creates())
    for _ in range(3):  # replays of the same persisted status: this process remembers
        world.once()
    assert len(fake_kube.creates()) == creates

    other = second_replica(world)  # a second replica: AlreadyExists, nothing new
    other.once()
    assert len(fake_kube.creates()) == creates + 2
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]

    world.release("1.1.0")
    world.advance(minutes=5)
    world.once()  # decides 1.1.0
    world.once()  # persisted: announced, and the OCIRepository is patched
    world.flux_catches_up()  # Flux applies 1.1.0: its (empty) bake succeeds, then is announced
    world.once()
    world.once()
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded", "Deployed", "BakeSucceeded"]
    assert len({e["metadata"]["name"] for e in fake_kube.events(NS)}) == 4


def test_a_decision_that_was_never_persisted_is_never_announced(fake_kube):
    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    for _ in range(3):
        response = world.post(world.request())  # Metacontroller's status writes keep failing
        assert response.status_code == 200
        assert response.get_json()["status"]["history"]
    assert fake_kube.events(NS) == []
    assert fake_kube.creates() == []


def test_an_install_over_an_old_history_announces_nothing_old(fake_kube):
    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    world.once()
    world.once()
    fake_kube.objects.clear()  # a new cluster, the same (restored) status, 3 hours later
    fake_kube.requests.clear()
    world.announcer = Announcer("apply", env=dict(os.environ))
    world._client = None
    world.advance(hours=3)
    world.once()
    assert fake_kube.events(NS) == [] and fake_kube.creates() == []


def test_dry_run_announces_nothing(fake_kube, notification_controller):
    world = events_world(fake_kube, notification_controller.url, mode="dry-run")
    world.release("1.0.0")
    world.publish()
    world.once()
    world.once()
    assert fake_kube.requests == [] and notification_controller.received == []


@pytest.mark.parametrize(
    "fault", [{"status": 403}, {"status": 500}, {"delay": 3.0}], ids=["forbidden", "server-error", "timeout"]
)
def test_a_refused_event_never_fails_the_sync_nor_blocks_a_patch(fake_kube, fault):
    world = events_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.once()
    world.once()
    world.release("1.1.0")
    world.advance(minutes=1)
    world.once()  # decides 1.1.0
    fake_kube.fail(path=EVENTS, **fault)
    status = world.once()  # persisted: patches the OCIRepository, the Events are refused
    assert world.last["resyncAfterSeconds"] <= 10, "a refused fact is retried with the 10 s backoff"
    assert fake_kube.get("OCIRepository", NS, "manifests")["spec"]["ref"]["tag"] == "1.1.0"
    assert status["targets"][0]["state"] != "Error"
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]

    fake_kube.clear_faults()
    world.advance(seconds=10)
    world.flux_catches_up()  # Flux applies 1.1.0: only then can its (empty) bake succeed
    world.once()
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded", "Deployed"]
    world.once()  # the bake's success, once persisted
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded", "Deployed", "BakeSucceeded"]
    world.once()
    assert len(fake_kube.events(NS)) == 4


def test_retries_back_off_from_the_fact_time_and_stop_after_an_hour(fake_kube):
    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    world.once()
    fake_kube.fail(500, path=EVENTS)
    delays = []
    for seconds in (0, 10, 20, 40, 80, 160, 320, 620):
        world.now = T0 + timedelta(seconds=seconds)
        world.once()
        delays.append(world.last["resyncAfterSeconds"])
    assert delays == [10, 10, 20, 40, 80, 160, 300, 300]
    world.now = T0 + timedelta(hours=1, seconds=1)
    world.once()
    assert world.last["resyncAfterSeconds"] == 300, "a fact over an hour old is dropped, not retried"
    assert fake_kube.events(NS) == []


def _flux_status(world: EventsWorld) -> None:
    world.ocirepos["manifests"]["metadata"]["uid"] = "7d0cdc51-ddcf-4743-b223-83ca5c699632"


def test_flux_notifications_are_well_formed_and_attributed_to_the_driven_objects(
    fake_kube, notification_controller
):
    world = events_world(fake_kube, notification_controller.url)
    world.ocirepo("manifests", tag="1.0.0")
    _flux_status(world)
    world.release("1.0.0")
    world.publish()
    world.once()
    world.once()
    world.once()
    received = notification_controller.received
    assert [e["reason"] for e in received] == ["Adopted", "BakeSucceeded"]
    for event in received:
        assert set(event) == {
            "involvedObject",
            "severity",
            "timestamp",
            "message",
            "reason",
            "metadata",
            "reportingController",
            "reportingInstance",
        }
        assert event["involvedObject"] == {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "name": "manifests",
            "namespace": NS,
            "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
        }
        assert event["severity"] in ("info", "error")
        assert datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) == T0
        assert event["message"] and event["reportingController"]
        # notification-controller keeps only keys prefixed with the object's API group
        assert all(key.startswith("source.toolkit.fluxcd.io/") for key in event["metadata"])
        assert event["metadata"]["source.toolkit.fluxcd.io/revision"] == "1.0.0"
        assert event["metadata"]["source.toolkit.fluxcd.io/rollout"] == f"{NS}/app"
        assert re.fullmatch(r"app\.[0-9a-f]{16}", event["metadata"]["source.toolkit.fluxcd.io/token"])
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]


def test_notification_controller_down_keeps_the_fact_pending_then_delivers_it(
    fake_kube, notification_controller
):
    world = events_world(fake_kube, notification_controller.url)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.once()
    notification_controller.status = 503
    world.once()
    assert notification_controller.received == []
    assert fake_kube.events(NS) == [], "the Event waits for the notification (at least once)"
    assert world.last["resyncAfterSeconds"] == 10

    notification_controller.status = 202
    world.advance(seconds=10)
    world.once()
    assert [e["reason"] for e in notification_controller.received] == ["Adopted", "BakeSucceeded"]
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]

    # a second replica, which never saw these facts, notifies again before it finds the
    # Events: notification-controller drops the duplicates (429), nothing is dispatched twice
    other = second_replica(world, notification_controller.url)
    other.once()
    assert len(notification_controller.received) == 2 and notification_controller.duplicates == 2
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]
    other.once()
    assert notification_controller.duplicates == 2, "then it remembers"


def test_notification_controller_down_for_long_gives_up_on_flux_not_on_the_event(
    fake_kube, notification_controller
):
    world = events_world(fake_kube, notification_controller.url)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.once()
    notification_controller.stop()  # connection refused from now on
    world.now = T0 + timedelta(minutes=11)
    world.once()
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]


def test_a_failed_bake_and_its_rollback_are_announced_as_warnings(fake_kube):
    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    start = T0 - timedelta(minutes=20)
    world.status = {
        "history": [
            {
                "id": 3,
                "version": {"tag": "1.0.0"},
                "timestamp": ts(T0),
                "message": "Automatic rollback from 1.1.0: A HealthCheck reported an error.",
                "trigger": "Rollback",
                "rollbackOf": 2,
                "triggeredBy": {"kind": "System", "name": "rollout-controller"},
                "bakeStatus": "Deploying",
                "bakeStatusMessage": "Waiting for health checks to become healthy before starting bake.",
            },
            {
                "id": 2,
                "version": {"tag": "1.1.0"},
                "timestamp": ts(start),
                "message": "Automatic deployment",
                "triggeredBy": {"kind": "System", "name": "rollout-controller"},
                "bakeStatus": "Failed",
                "bakeStatusMessage": "A HealthCheck reported an error after bake started.",
                "bakeStartTime": ts(start + timedelta(minutes=5)),
                "bakeEndTime": ts(T0),
            },
        ],
        "hold": {
            "reason": "AutomaticRollback",
            "resumeAfter": "1.1.0",
            "since": ts(T0),
            "historyId": 3,
            "message": "Automatic rollback from 1.1.0",
        },
    }
    world.spec["bakeTime"] = "10m"
    # the fields of the revised engine (trigger, rollbackOf, hold) are not in this CRD yet:
    # post without the World's status-schema check
    assert world.post(world.request()).status_code == 200
    events = {e["reason"]: e for e in fake_kube.events(NS)}
    assert list(events) == ["Deployed", "BakeStarted", "BakeFailed", "RolledBack", "HoldSet"]
    assert events["BakeFailed"]["type"] == "Warning" and events["RolledBack"]["type"] == "Warning"
    assert events["HoldSet"]["note"].startswith("Automatic deploys wait for a release later than 1.1.0")


def test_targets_failing_is_announced_as_a_warning(fake_kube):
    world = events_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.once()
    world.once()
    world.release("1.1.0")
    world.advance(minutes=1)
    world.once()
    fake_kube.fail(403, path="/apis/source.toolkit.fluxcd.io/v1/namespaces/shop/ocirepositories/manifests")
    world.once()  # the patch is refused: the status records TargetsFailing
    assert world.condition("TargetsSynced") == ("False", "TargetsFailing")
    world.once()  # ... which the next sync announces
    failing = [e for e in fake_kube.events(NS) if e["reason"] == "TargetsFailing"]
    assert len(failing) == 1 and failing[0]["type"] == "Warning"
    assert "OCIRepository/manifests" in failing[0]["note"] and "forbidden" in failing[0]["note"]
    world.advance(seconds=10)
    world.once()
    assert len([e for e in fake_kube.events(NS) if e["reason"] == "TargetsFailing"]) == 1


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_delivery_metrics_are_counted_once_across_replicas(fake_kube):
    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    deployments = _sample("rollout_delivery_deployments_total", namespace=NS, trigger="Automatic")
    lead_times = _sample("rollout_delivery_lead_time_seconds_count", namespace=NS)
    world.once()
    world.once()
    second_replica(world).once()
    world.once()
    assert _sample("rollout_delivery_deployments_total", namespace=NS, trigger="Automatic") == deployments + 1
    assert _sample("rollout_delivery_lead_time_seconds_count", namespace=NS) == lead_times + 1
    assert _sample("rollout_announcements_total", destination="kubernetes", result="exists") >= 2


def test_flux_events_address_must_be_an_http_url():
    with pytest.raises(ValueError, match="FLUX_EVENTS_ADDRESS"):
        Announcer.from_env({"FLUX_EVENTS_ADDRESS": "notification-controller.flux-system"})
    with pytest.raises(ValueError, match="FLUX_EVENTS_ADDRESS"):
        create_app(environ={"HOOK_AUTH_DISABLED": "true", "FLUX_EVENTS_ADDRESS": "flux-system:80"})
    announcer = Announcer.from_env(
        {"FLUX_EVENTS_ADDRESS": " http://notification-controller.flux-system.svc./ "}
    )
    assert announcer.flux_address == "http://notification-controller.flux-system.svc./"
    assert Announcer.from_env({}).flux_address is None


def test_the_fake_api_server_validates_events_as_the_api_server_does(fake_kube):
    import httpx2

    from hooks.announce import kubernetes_event
    from hooks.facts import Fact

    rollout = {"metadata": {"name": "app", "namespace": NS, "uid": UID}}
    fact = Fact("app.0123456789abcdef", "Deployed", T0, "Deployed 1.0.0")
    good = kubernetes_event(rollout, fact, "rollout-hooks-0")
    headers = {"Authorization": "Bearer fake-token-for-tests"}

    def create(body: dict) -> httpx2.Response:
        return httpx2.post(fake_kube.url + EVENTS, json=body, headers=headers, timeout=5)

    assert create(good).status_code == 201
    conflict = create(good)
    assert conflict.status_code == 409 and conflict.json()["reason"] == "AlreadyExists"
    assert (
        create(
            {**good, "metadata": {"name": "b", "namespace": NS}, "eventTime": "2026-03-02T09:00:00Z"}
        ).status_code
        == 400
    )
    assert create({**good, "metadata": {"name": "c", "namespace": NS}, "note": "x" * 2000}).status_code == 422
    assert (
        create({**good, "metadata": {"name": "d", "namespace": NS}, "reportingController": "a b"}).status_code
        == 422
    )
    assert create({**good, "metadata": {"name": "e", "namespace": "other"}}).status_code == 400


def test_a_spent_request_deadline_sends_nothing_and_keeps_the_facts_due(fake_kube):
    import time

    from hooks import facts as facts_

    world = events_world(fake_kube)
    world.release("1.0.0")
    world.publish()
    world.once()
    rollout = world.rollout()
    due = facts_.facts(rollout, world.now)
    outcome = world.announcer.announce(rollout, due, [], world.now, deadline=time.monotonic())
    assert [f.reason for f in outcome.pending] == ["Deployed", "BakeSucceeded"]
    assert fake_kube.creates() == [] and outcome.retry_after(world.now) == 10


def _doc_yaml() -> list[dict]:
    import yaml

    from tests.test_monitoring import REPO

    text = (REPO / "docs" / "events-and-metrics.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if isinstance(doc, dict)]


#: Flux Alert eventSources kinds (notification-controller api/v1 CrossNamespaceObjectReference).
ALERT_KINDS = {
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
}


def test_the_documented_alert_routes_every_fact_we_announce():
    from hooks import facts as facts_
    from tests.test_facts import CASES

    [alert] = [d for d in _doc_yaml() if d.get("kind") == "Alert"]
    [provider] = [d for d in _doc_yaml() if d.get("kind") == "Provider"]
    assert alert["apiVersion"] == provider["apiVersion"] == "notification.toolkit.fluxcd.io/v1beta3"
    assert alert["spec"]["providerRef"]["name"] == provider["metadata"]["name"]
    sources = alert["spec"]["eventSources"]
    assert {s["kind"] for s in sources} <= ALERT_KINDS
    assert {s["kind"] for s in sources} == {"OCIRepository", "Kustomization"}
    patterns = [re.compile(p) for p in alert["spec"]["inclusionList"]]
    announced = {f.reason: f.message for _, status, _ in CASES for f in facts_.derive(status, "app", UID)}
    retried = {"history": [{"id": 1, "version": {"tag": "1.0.0"}, "timestamp": ts(T0)}]}
    retried["history"][0]["lastRetryTimestamp"] = ts(T0)
    announced |= {f.reason: f.message for f in facts_.derive(retried, "app", UID)}
    assert set(announced) == set(facts_.KINDS), "every kind of fact is checked"
    for reason, message in announced.items():
        assert any(p.search(message) for p in patterns), (reason, message)


def test_the_documented_network_policy_admits_the_hooks_to_the_event_port():
    [policy] = [d for d in _doc_yaml() if d.get("kind") == "NetworkPolicy"]
    assert policy["metadata"]["namespace"] == "flux-system"
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9090}]  # notification-controller `http`
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "rollout-controller"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "rollout-hooks"}


def test_the_service_built_from_the_environment_announces(fake_kube, notification_controller):
    world = events_world(fake_kube)
    world.announcer = None  # type: ignore[assignment]  # the World's own app announces nothing
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.once()
    assert fake_kube.events(NS) == []
    env = {**os.environ, "HOOK_AUTH_DISABLED": "true", "FLUX_EVENTS_ADDRESS": notification_controller.url}
    app = create_app(clock=lambda: world.now, environ=env)  # the production wiring
    response = app.test_client().post("/rollout/sync", json=world.request())
    assert response.status_code == 200
    assert reasons(fake_kube) == ["Adopted", "BakeSucceeded"]
    assert [e["reason"] for e in notification_controller.received] == ["Adopted", "BakeSucceeded"]
