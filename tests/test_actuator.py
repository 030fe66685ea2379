"""The real Actuator against the fake API server, reached through a temporary kubeconfig."""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import time

import httpx2
import pytest

from hooks.actuator import CONFLICT_MESSAGE, Actuator, outcome_for_exception, outcome_for_status
from hooks.logjson import JsonFormatter
from hooks.patchplan import PatchOutcome, PlannedPatch, plan_fields, set_ops
from tests import flux_objects as flux
from tests.fakekube import FAKE_TOKEN, FakeKube, path_for, write_kubeconfig

TAG = ["spec", "ref", "tag"]
SUBSTITUTE = ["spec", "postBuild", "substitute"]


def oci(name: str = "web", tag: str = "1.0.0") -> dict:
    """An OCIRepository as source-controller left it: Ready for `tag`."""
    return flux.ready(flux.ocirepository(name, tag, rollout="web"), tag)


def kustomization(name: str = "web", **spec) -> dict:
    """A Kustomization Ready for the 1.0.0 artifact, with `spec` fields replaced."""
    obj = flux.ready(flux.kustomization(name, source=name), "1.0.0")
    obj["spec"].update(spec)
    return obj


def planned(obj: dict, ops: list[dict]) -> PlannedPatch:
    meta = obj["metadata"]
    return PlannedPatch(obj["kind"], meta["namespace"], meta["name"], tuple(ops))


def tag_patch(obj: dict, tag: str) -> PlannedPatch:
    return planned(obj, set_ops(obj, TAG, tag))


def unchanged(fake: FakeKube, obj: dict) -> bool:
    """The stored object equals what was put (ignoring the fake's bookkeeping fields)."""
    stored = fake.get(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
    assert stored is not None
    return stored["metadata"]["resourceVersion"] == "1" and stored["spec"] == obj["spec"]


@pytest.fixture
def actuator(fake_kube):
    actuator = Actuator.from_env(os.environ)
    yield actuator
    actuator.close()


@pytest.fixture(autouse=True)
def hooks_logs_reach_caplog(monkeypatch):
    """hooks.logjson.configure() (run by app tests) stops `hooks` logs from propagating."""
    monkeypatch.setattr(logging.getLogger("hooks"), "propagate", True)


def actuation_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "actuation" in getattr(r, "fields", {})]


# --- applying ------------------------------------------------------------------------------


def test_replaces_the_oci_tag_with_one_guarded_json_patch(fake_kube, actuator):
    web, other = oci("web"), oci("api")
    kust = kustomization(postBuild={"substitute": {"APP_VERSION": "1.0.0"}})
    for obj in (web, other, kust):
        fake_kube.put(obj)
    patch = tag_patch(web, "1.1.0")

    assert actuator.mode == "apply"
    assert actuator.apply([patch]) == [PatchOutcome("applied", "")]

    [request] = fake_kube.requests
    assert request.method == "PATCH"
    assert request.path == patch.path == path_for("OCIRepository", "shop", "web")
    assert request.content_type == "application/json-patch+json"
    assert request.authorization == f"Bearer {FAKE_TOKEN}"
    assert request.query == {"fieldManager": ["kuberik-rollout"]}
    assert request.body == [
        {"op": "test", "path": "/spec/ref/tag", "value": "1.0.0"},
        {"op": "replace", "path": "/spec/ref/tag", "value": "1.1.0"},
    ]
    stored = fake_kube.get("OCIRepository", "shop", "web")
    expected = copy.deepcopy(web)
    expected["spec"]["ref"]["tag"] = "1.1.0"
    assert stored["spec"] == expected["spec"]
    assert stored["metadata"]["annotations"] == web["metadata"]["annotations"]
    assert unchanged(fake_kube, other) and unchanged(fake_kube, kust)


@pytest.mark.parametrize(
    "spec",
    [{}, {"postBuild": {}}, {"postBuild": {"substitute": {"OTHER": "keep"}}}],
    ids=["no-postBuild", "no-substitute", "no-variable"],
)
def test_adds_a_missing_substitute_guarded_by_a_test_of_its_parent(fake_kube, actuator, spec):
    kust = kustomization(**copy.deepcopy(spec))
    fake_kube.put(kust)
    patch = planned(kust, set_ops(kust, [*SUBSTITUTE, "APP_VERSION"], "2.0.0"))
    assert patch.ops[0]["op"] == "test" and patch.ops[1]["op"] == "add"

    assert actuator.apply([patch]) == [PatchOutcome("applied", "")]

    stored = fake_kube.get("Kustomization", "shop", "web")
    substitute = stored["spec"]["postBuild"]["substitute"]
    assert substitute["APP_VERSION"] == "2.0.0"
    assert substitute.get("OTHER") == spec.get("postBuild", {}).get("substitute", {}).get("OTHER")
    assert {k: v for k, v in stored["spec"].items() if k != "postBuild"} == {
        k: v for k, v in kust["spec"].items() if k != "postBuild"
    }


def test_several_substitutes_of_one_kustomization_go_in_one_patch(fake_kube, actuator):
    kust = kustomization(postBuild={"substitute": {"API_VERSION": "1.0.0", "UNRELATED": "u"}})
    fake_kube.put(kust)
    ops = plan_fields(
        kust, [([*SUBSTITUTE, "API_VERSION"], "1.1.0"), ([*SUBSTITUTE, "WEB_VERSION"], "3.0.0")]
    )

    assert actuator.apply([planned(kust, ops)]) == [PatchOutcome("applied", "")]

    assert len(fake_kube.requests) == 1
    stored = fake_kube.get("Kustomization", "shop", "web")
    assert stored["spec"]["postBuild"]["substitute"] == {
        "API_VERSION": "1.1.0",
        "WEB_VERSION": "3.0.0",
        "UNRELATED": "u",
    }


def test_outcomes_keep_the_order_of_the_patches(fake_kube, actuator):
    objs = [oci("a"), oci("b"), oci("c")]
    for obj in objs:
        fake_kube.put(obj)
    fake_kube.fail(403, path=path_for("OCIRepository", "shop", "b"))

    outcomes = actuator.apply([tag_patch(obj, "2.0.0") for obj in objs])

    assert [o.result for o in outcomes] == ["applied", "error", "applied"]
    assert outcomes[1].message.startswith("forbidden: ")
    assert fake_kube.get("OCIRepository", "shop", "a")["spec"]["ref"]["tag"] == "2.0.0"
    assert unchanged(fake_kube, objs[1])
    assert fake_kube.get("OCIRepository", "shop", "c")["spec"]["ref"]["tag"] == "2.0.0"


def test_a_stale_test_is_a_conflict_and_leaves_the_object_alone(fake_kube, actuator):
    observed = oci(tag="1.0.0")
    current = oci(tag="1.0.5")  # someone changed it after Metacontroller observed it
    fake_kube.put(current)

    assert actuator.apply([tag_patch(observed, "1.1.0")]) == [PatchOutcome("conflict", CONFLICT_MESSAGE)]
    assert unchanged(fake_kube, current)


def test_a_changed_parent_is_a_conflict(fake_kube, actuator):
    observed = kustomization(postBuild={"substitute": {"A": "1"}})
    current = kustomization(postBuild={"substitute": {"A": "1", "B": "someone else"}})
    fake_kube.put(current)
    patch = planned(observed, set_ops(observed, [*SUBSTITUTE, "APP_VERSION"], "2.0.0"))

    assert actuator.apply([patch]) == [PatchOutcome("conflict", CONFLICT_MESSAGE)]
    assert unchanged(fake_kube, current)


def test_concurrent_applies_share_one_client(fake_kube, actuator):
    objs = [oci(f"app{i}") for i in range(8)]
    for obj in objs:
        fake_kube.put(obj)
    results: dict[str, list[PatchOutcome]] = {}

    def run(obj):
        results[obj["metadata"]["name"]] = actuator.apply([tag_patch(obj, "9.9.9")])

    threads = [threading.Thread(target=run, args=(obj,)) for obj in objs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(outcomes == [PatchOutcome("applied", "")] for outcomes in results.values())
    assert len(results) == 8
    assert all(
        fake_kube.get("OCIRepository", "shop", o["metadata"]["name"])["spec"]["ref"]["tag"] == "9.9.9"
        for o in objs
    )


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result", "prefix"),
    [
        (401, "error", "unauthorized: Unauthorized"),
        (403, "error", 'forbidden: ocirepositories.source.toolkit.fluxcd.io "web" is forbidden'),
        (404, "error", 'not found: ocirepositories.source.toolkit.fluxcd.io "web" not found'),
        (409, "conflict", CONFLICT_MESSAGE),
        (429, "error", "API server error 429: Too many requests"),
        (500, "error", "API server error 500: Internal error occurred"),
        (503, "error", "API server error 503: "),
        (400, "error", "rejected by the API server (400): "),
    ],
)
def test_api_errors_become_outcomes_with_the_reason(fake_kube, actuator, status, result, prefix):
    obj = oci()
    fake_kube.put(obj)
    fake_kube.fail(status)

    first = actuator.apply([tag_patch(obj, "1.1.0")])
    second = actuator.apply([tag_patch(obj, "1.1.0")])

    assert first[0].result == result
    assert first[0].message.startswith(prefix)
    assert len(first[0].message) <= 200
    assert second == first  # deterministic: the status stays a fixed point
    assert unchanged(fake_kube, obj)


def test_a_missing_object_is_not_found(fake_kube, actuator):
    [outcome] = actuator.apply([tag_patch(oci("gone"), "1.1.0")])
    assert outcome == PatchOutcome(
        "error", 'not found: ocirepositories.source.toolkit.fluxcd.io "gone" not found'
    )
    assert fake_kube.get("OCIRepository", "shop", "gone") is None  # never created


def test_a_wrong_token_is_unauthorized(fake_kube, tmp_path, monkeypatch):
    fake_kube.put(oci())
    config = tmp_path / "wrong-token"
    write_kubeconfig(config, fake_kube.url, token="not-the-token")
    monkeypatch.setenv("KUBECONFIG", str(config))
    actuator = Actuator.from_env(os.environ)
    try:
        assert actuator.apply([tag_patch(oci(), "1.1.0")]) == [
            PatchOutcome("error", "unauthorized: Unauthorized")
        ]
    finally:
        actuator.close()


def test_schema_validation_errors_are_errors_not_conflicts(fake_kube, actuator):
    obj = oci()
    fake_kube.put(obj)
    details = {
        "causes": [{"reason": "FieldValueInvalid", "field": "spec.ref.tag", "message": "Invalid value"}]
    }
    message = 'OCIRepository.source.toolkit.fluxcd.io "web" is invalid: spec.ref.tag: Invalid value'
    fake_kube.fail(422, message=message, details=details)

    assert actuator.apply([tag_patch(obj, "1.1.0")]) == [PatchOutcome("error", f"invalid: {message}")]


def test_long_api_messages_are_truncated(fake_kube, actuator):
    fake_kube.put(oci())
    fake_kube.fail(403, message="denied " * 100)
    [outcome] = actuator.apply([tag_patch(oci(), "1.1.0")])
    assert outcome.message.startswith("forbidden: denied denied")
    assert outcome.message.endswith("...")
    assert len(outcome.message) == 200


def test_a_slow_api_server_times_out_within_the_bound(fake_kube, actuator):
    obj = oci()
    fake_kube.put(obj)
    fake_kube.fail(delay=3.5)  # longer than the 3 s bound of one call

    started = time.monotonic()
    outcomes = actuator.apply([tag_patch(obj, "1.1.0")])
    elapsed = time.monotonic() - started

    assert outcomes == [PatchOutcome("error", "timed out after 3s")]
    assert 2.5 < elapsed < 4.0


def test_a_dropped_connection_is_reported(fake_kube, actuator):
    fake_kube.put(oci())
    fake_kube.fail(drop=True)
    [outcome] = actuator.apply([tag_patch(oci(), "1.1.0")])
    assert outcome.result == "error"
    assert outcome.message.startswith("cannot reach the Kubernetes API: ")


def test_a_closed_port_is_a_connection_error(fake_kube, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "closed"
    write_kubeconfig(config, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KUBECONFIG", str(config))
    actuator = Actuator.from_env(os.environ)
    try:
        outcomes = actuator.apply([tag_patch(oci(), "1.1.0"), tag_patch(oci("api"), "1.1.0")])
    finally:
        actuator.close()
    assert [o.result for o in outcomes] == ["error", "error"]
    assert all(o.message.startswith("cannot reach the Kubernetes API: ") for o in outcomes)
    assert outcomes[0] == outcomes[1]
    assert fake_kube.requests == []


def test_the_sync_budget_stops_sending_once_used_up(fake_kube):
    objs = [oci("a"), oci("b"), oci("c")]
    for obj in objs:
        fake_kube.put(obj)
    readings = iter([0.0, 0.0, 3.5, 4.5])  # deadline, then before each call

    actuator = Actuator.from_env(os.environ, sync_budget=7.0, clock=lambda: next(readings))
    try:
        outcomes = actuator.apply([tag_patch(obj, "2.0.0") for obj in objs])
    finally:
        actuator.close()

    assert outcomes[:2] == [PatchOutcome("applied", ""), PatchOutcome("applied", "")]
    assert outcomes[2] == PatchOutcome("error", "not sent: this sync used up its 7s budget for API calls")
    assert [r.path for r in fake_kube.requests] == [path_for("OCIRepository", "shop", n) for n in ("a", "b")]
    assert unchanged(fake_kube, objs[2])


def test_http_errors_without_a_json_status_still_map_by_code():
    request = httpx2.Request("PATCH", "http://api/apis/x")
    response = httpx2.Response(503, text="upstream connect error", request=request)
    error = httpx2.HTTPStatusError("503", request=request, response=response)
    assert outcome_for_exception(error) == PatchOutcome(
        "error", "API server error 503: upstream connect error"
    )
    # lightkube reads the Content-Type header while converting; a missing one raises KeyError
    try:
        try:
            raise error
        except httpx2.HTTPError:
            raise KeyError("Content-Type") from None
    except KeyError as decoding_failure:
        assert outcome_for_exception(decoding_failure) == PatchOutcome(
            "error", "API server error 503: upstream connect error"
        )


def test_apply_never_raises(fake_kube, actuator):
    fake_kube.put(oci())
    unencodable = PlannedPatch(
        "OCIRepository", "shop", "web", ({"op": "test", "path": "/a", "value": object()},)
    )
    good = tag_patch(oci(), "1.1.0")

    outcomes = actuator.apply([unencodable, good])

    assert outcomes == [PatchOutcome("error", "unexpected error: TypeError"), PatchOutcome("applied", "")]
    assert [r.method for r in fake_kube.requests] == ["PATCH"]


# --- credentials ---------------------------------------------------------------------------


def test_without_credentials_from_env_does_not_raise_and_every_patch_errors(fake_kube, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))

    actuator = Actuator.from_env(os.environ)
    outcomes = actuator.apply([tag_patch(oci(), "1.1.0"), tag_patch(oci("api"), "1.1.0")])

    assert actuator.mode == "apply"
    assert actuator.server is None
    expected = f"no usable Kubernetes credentials: not running in a cluster; no kubeconfig file at {missing}"
    assert outcomes == [PatchOutcome("error", expected)] * 2
    assert fake_kube.requests == []

    # Credentials that appear later are picked up without a restart.
    write_kubeconfig(missing, fake_kube.url)
    fake_kube.put(oci())
    try:
        assert actuator.apply([tag_patch(oci(), "1.1.0")]) == [PatchOutcome("applied", "")]
    finally:
        actuator.close()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("clusters: [\n  - unclosed", "ParserError"),
        ("clusters: []\ncontexts: []\n", "No current context set"),
        (
            "clusters: []\ncontexts: [{name: x, context: {cluster: gone}}]\ncurrent-context: x\n",
            "missing entry 'gone'",
        ),
    ],
)
def test_a_broken_kubeconfig_is_a_credentials_error(fake_kube, tmp_path, monkeypatch, content, reason):
    config = tmp_path / "broken"
    config.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(config))

    [outcome] = Actuator.from_env(os.environ).apply([tag_patch(oci(), "1.1.0")])

    assert outcome.result == "error"
    assert outcome.message.startswith(f"no usable Kubernetes credentials: kubeconfig {config}: ")
    assert reason in outcome.message


def test_in_cluster_service_account_is_preferred(fake_kube, tmp_path, monkeypatch):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "namespace").write_text("rollout-system")
    (account / "ca.crt").write_text("not a certificate")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")

    actuator = Actuator.from_env(os.environ, service_account_dir=str(account))
    assert actuator.source == "in-cluster service account"
    assert actuator.server == "https://127.0.0.1:1"

    # An unreadable CA bundle is a credentials problem, reported per patch, not raised.
    [outcome] = actuator.apply([tag_patch(oci(), "1.1.0")])
    assert outcome.result == "error"
    assert outcome.message.startswith("no usable Kubernetes credentials: in-cluster service account: ")
    assert fake_kube.requests == []


def test_in_cluster_env_without_a_token_falls_back_to_kubeconfig(fake_kube, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
    actuator = Actuator.from_env(os.environ, service_account_dir=str(tmp_path / "none"))
    fake_kube.put(oci())
    try:
        assert actuator.source.startswith("kubeconfig ")
        assert actuator.apply([tag_patch(oci(), "1.1.0")]) == [PatchOutcome("applied", "")]
    finally:
        actuator.close()


# --- modes, refusals, logs -----------------------------------------------------------------


def test_dry_run_sends_nothing_and_logs_the_planned_patch(fake_kube, monkeypatch, caplog):
    monkeypatch.setenv("ROLLOUT_ACTUATION", "dry-run")
    obj = oci()
    fake_kube.put(obj)
    patch = tag_patch(obj, "1.1.0")

    with caplog.at_level(logging.INFO, logger="hooks.actuator"):
        actuator = Actuator.from_env(os.environ)
        outcomes = actuator.apply([patch])

    assert actuator.mode == "dry-run"
    assert outcomes == [PatchOutcome("dry-run", "dry-run")]
    assert fake_kube.requests == []
    assert unchanged(fake_kube, obj)
    [record] = actuation_records(caplog)
    assert record.levelno == logging.INFO
    assert record.fields["actuation"] == {
        "kind": "OCIRepository",
        "namespace": "shop",
        "name": "web",
        "result": "dry-run",
        "ops": patch.ops,
    }
    line = json.loads(JsonFormatter().format(record))  # the service's JSON log line
    assert line["msg"] == "planned (dry-run) OCIRepository shop/web: dry-run"
    assert line["actuation"]["ops"] == list(patch.ops)


def test_dry_run_needs_no_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    actuator = Actuator.from_env({"ROLLOUT_ACTUATION": "dry-run", "KUBECONFIG": str(tmp_path / "missing")})
    assert actuator.apply([tag_patch(oci(), "1.1.0")]) == [PatchOutcome("dry-run", "dry-run")]


@pytest.mark.parametrize(("value", "mode"), [("", "apply"), ("apply", "apply"), (" dry-run ", "dry-run")])
def test_actuation_mode_from_env(fake_kube, value, mode):
    assert Actuator.from_env({**os.environ, "ROLLOUT_ACTUATION": value}).mode == mode


@pytest.mark.parametrize("value", ["Apply", "DRY-RUN", "dryrun", "yes-please"])
def test_unknown_actuation_mode_is_refused(value):
    """docs/service.md: a typo such as `dryrun` must never silently mean apply."""
    with pytest.raises(ValueError, match="expected 'apply' or 'dry-run'"):
        Actuator.from_env({"ROLLOUT_ACTUATION": value})


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (PlannedPatch("Deployment", "shop", "web", ({"op": "test", "path": "/a", "value": 1},)), "kind"),
        (PlannedPatch("OCIRepository", "shop", "web", ()), "test op"),
        (
            PlannedPatch(
                "OCIRepository", "shop", "web", ({"op": "replace", "path": "/spec/ref/tag", "value": "x"},)
            ),
            "test op",
        ),
        (PlannedPatch("OCIRepository", "shop", "", ({"op": "test", "path": "/a", "value": 1},)), "name"),
        (PlannedPatch("OCIRepository", "", "web", ({"op": "test", "path": "/a", "value": 1},)), "namespace"),
        (PlannedPatch("OCIRepository", "shop", "a/b", ({"op": "test", "path": "/a", "value": 1},)), "name"),
    ],
)
@pytest.mark.parametrize("mode", ["apply", "dry-run"])
def test_unguarded_or_foreign_patches_are_refused_without_a_request(fake_kube, patch, reason, mode):
    fake_kube.put(oci())
    actuator = Actuator.from_env({**os.environ, "ROLLOUT_ACTUATION": mode})
    try:
        [outcome] = actuator.apply([patch])
    finally:
        actuator.close()
    assert outcome.result == "error"
    assert outcome.message.startswith("refused: ")
    assert reason in outcome.message
    assert fake_kube.requests == []


def test_applied_patches_are_logged_without_secrets(fake_kube, actuator, caplog):
    fake_kube.put(oci())
    with caplog.at_level(logging.DEBUG):
        actuator.apply([tag_patch(oci(), "1.1.0")])
    records = actuation_records(caplog)
    assert [r.fields["actuation"] for r in records] == [
        {"kind": "OCIRepository", "namespace": "shop", "name": "web", "result": "applied", "message": ""}
    ]
    assert records[0].levelno == logging.INFO
    assert FAKE_TOKEN not in caplog.text
    assert all(FAKE_TOKEN not in repr(r.__dict__) for r in caplog.records)


# --- 422s and bodies that are not a Status (docs/targets.md) ---------------------------------


def test_a_failed_test_reported_by_the_api_server_is_a_conflict(fake_kube, actuator):
    """The API server's own text for a failed `test`: someone else changed the field."""
    obj = oci()
    fake_kube.put(oci(tag="1.0.5"))  # changed by someone else since it was observed
    assert actuator.apply([tag_patch(obj, "1.1.0")]) == [PatchOutcome("conflict", CONFLICT_MESSAGE)]
    [request] = fake_kube.patches()
    assert fake_kube.get("OCIRepository", "shop", "web")["spec"]["ref"]["tag"] == "1.0.5"
    assert request.body[0]["op"] == "test"


def test_an_admission_refusal_422_is_an_error_naming_it(fake_kube, actuator):
    fake_kube.put(oci())
    message = (
        'ocirepositories.source.toolkit.fluxcd.io "web" is forbidden: ValidatingAdmissionPolicy '
        "'pinned-tags' with binding 'pinned-tags' denied request: tags must be pinned"
    )
    fake_kube.fail(422, message=message)
    [outcome] = actuator.apply([tag_patch(oci(), "1.1.0")])
    assert outcome.result == "error"
    assert outcome.message.startswith('invalid: ocirepositories.source.toolkit.fluxcd.io "web" is forbidden')
    assert "pinned-tags" in outcome.message


def test_a_422_without_any_cause_is_an_error_not_a_conflict(fake_kube, actuator):
    fake_kube.put(oci())
    fake_kube.fail(422, message='Kustomization.kustomize.toolkit.fluxcd.io "web" is invalid')
    [outcome] = actuator.apply([tag_patch(oci(), "1.1.0")])
    assert outcome == PatchOutcome(
        "error", 'invalid: Kustomization.kustomize.toolkit.fluxcd.io "web" is invalid'
    )


def html_502(request_id: str, date: str) -> bytes:
    return (
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
        f"</center><hr><center>nginx</center><p>request {request_id} at {date}</p></body></html>"
    ).encode()


def test_an_html_502_page_becomes_one_fixed_bounded_message(fake_kube, actuator):
    fake_kube.put(oci())
    outcomes = []
    for request_id, date in (
        ("a1b2", "Mon, 02 Mar 2026 09:00:01 GMT"),
        ("c3d4", "Mon, 02 Mar 2026 09:00:12 GMT"),
    ):
        fake_kube.fail(502, raw=html_502(request_id, date), times=1)
        outcomes.extend(actuator.apply([tag_patch(oci(), "1.1.0")]))
    expected = PatchOutcome("error", "API server error 502: HTTP 502 with a non-Status body (text/html)")
    assert outcomes == [expected, expected], "the page's request id and date never reach the status"


def test_volatile_parts_of_api_messages_are_replaced():
    first = outcome_for_status(
        500,
        {
            "message": "etcd timeout for request 0d9c1f4e-8a56-4a52-9a8d-1f0d2f6c9d3e"
            " at 2026-03-02T09:00:01.123Z after 2.003s"
        },
    )
    second = outcome_for_status(
        500,
        {
            "message": "etcd timeout for request 5b1e0c7a-1111-4a52-9a8d-000000000000"
            " at 2026-03-02T09:07:45Z after 1.5s"
        },
    )
    assert first == second
    assert first.message == "API server error 500: etcd timeout for request <id> at <time> after <duration>"
