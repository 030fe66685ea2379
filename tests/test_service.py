"""The hook service: probes, metrics, bearer token, size limit, errors, logs, gunicorn."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hooks import logjson, metrics
from hooks.app import HOOKS, MAX_BODY_BYTES, ConfigError, HookContext, create_app

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
TOKEN = "tok-3f9a1c7e5d"


class UnusedActuator:
    """Stands in for the actuator; the service itself never calls it."""


def rollout(name: str = "web", namespace: str = "apps", deployed: str | None = None) -> dict:
    parent: dict[str, Any] = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"releasesImagePolicy": {"name": "web"}},
    }
    if deployed:
        parent["status"] = {"history": [{"id": 1, "version": {"tag": deployed}}]}
    return {"controller": {}, "parent": parent, "related": {}, "children": {}}


def echo(body: Any, ctx: HookContext) -> dict:
    ctx.log["object"] = "test/echo"
    return {"status": {"seen": sorted(body)}, "children": [], "resyncAfterSeconds": 30}


def boom(body: Any, ctx: HookContext) -> dict:
    ctx.log["object"] = "test/boom"
    ctx.log["patches"] = ["applied", "error"]
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("handler broke") from exc
    raise AssertionError("unreachable")


def not_a_dict(body: Any, ctx: HookContext) -> dict:
    return ["status"]  # type: ignore[return-value]


def fake_rollout_sync(body: Any, ctx: HookContext) -> dict:
    """Fills ctx.log like the real Rollout sync does, from instructions in the body."""
    ctx.log.update(body["log"])
    return {"status": {}, "children": [], "resyncAfterSeconds": 60}


EXTRA = {"/test/echo": echo, "/test/boom": boom, "/test/not-a-dict": not_a_dict}


def make_client(environ: dict[str, str] | None = None, extra: dict | None = None) -> Any:
    app = create_app(
        clock=lambda: NOW,
        actuator=UnusedActuator(),
        extra_hooks={**EXTRA, **(extra or {})},
        environ=environ if environ is not None else {"HOOK_AUTH_DISABLED": "true"},
    )
    return app.test_client()


@pytest.fixture
def client() -> Any:
    return make_client()


def sample(client: Any, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The JSON lines of the request logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logjson.JsonFormatter())
    logger = logging.getLogger("hooks.request")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --- probes and routes -------------------------------------------------------------------


def test_healthz_and_readyz(client: Any) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"
    assert set(HOOKS) <= set(ready.get_json()["hooks"])


def test_every_hook_route_is_post_only(client: Any) -> None:
    for path in HOOKS:
        response = client.get(path)
        assert response.status_code == 405, path
        assert "error" in response.get_json()


def test_unknown_path_is_json_404(client: Any) -> None:
    response = client.post("/nope", data=b"{}")
    assert response.status_code == 404 and "error" in response.get_json()


def test_missing_handler_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from hooks import app as app_module

    monkeypatch.setitem(app_module.HOOKS, "/broken/sync", "hooks.does_not_exist:sync")
    with pytest.raises(app_module.HookLoadError, match="/broken/sync"):
        create_app(actuator=UnusedActuator(), environ={"HOOK_AUTH_DISABLED": "true"})


def test_module_import_builds_nothing_until_app_is_used() -> None:
    code = "import sys, hooks.app; assert '_app' in vars(hooks.app) and hooks.app._app is None"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- request errors ------------------------------------------------------------------------


def test_malformed_json_is_400_json(client: Any) -> None:
    before = sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="bad_request")
    response = client.post("/test/echo", data=b'{"parent": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("malformed JSON")
    after = sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="bad_request")
    assert after == before + 1


@pytest.mark.parametrize("path", sorted(HOOKS))
def test_real_hooks_answer_400_to_a_body_that_is_not_a_hook_request(client: Any, path: str) -> None:
    for body in (b"[1, 2]", b'"text"', b"{}"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, (path, body)
        assert "error" in response.get_json()


def test_handler_exception_is_500_json_never_200(client: Any) -> None:
    before = sample(client, "rollout_hook_requests_total", hook="test/boom", outcome="error")
    response = client.post("/test/boom", json={"parent": {}})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error: RuntimeError"}
    assert sample(client, "rollout_hook_requests_total", hook="test/boom", outcome="error") == before + 1


def test_answer_that_is_not_an_object_is_500(client: Any) -> None:
    response = client.post("/test/not-a-dict", json={})
    assert response.status_code == 500
    assert "status" not in response.get_json()


def test_body_over_32_mib_is_413_json(client: Any) -> None:
    before = sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="too_large")
    body = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.post("/test/echo", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="too_large") == before + 1


def test_body_just_under_the_limit_is_served(client: Any) -> None:
    pad = MAX_BODY_BYTES - len(b'{"pad": ""}')
    body = b'{"pad": "' + b"x" * pad + b'"}'
    assert len(body) == MAX_BODY_BYTES
    response = client.post("/test/echo", data=body, content_type="application/json")
    assert response.status_code == 200
    assert response.get_json()["status"] == {"seen": ["pad"]}


# --- bearer token ------------------------------------------------------------------------------


def test_token_required_on_hooks_when_configured() -> None:
    calls: list[int] = []

    def counting(body: Any, ctx: HookContext) -> dict:
        calls.append(1)
        return {"status": {}, "children": []}

    client = make_client({"HOOK_TOKEN": TOKEN}, extra={"/test/count": counting})
    before = sample(client, "rollout_hook_requests_total", hook="test/count", outcome="unauthorized")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        response = client.post("/test/count", json={}, headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json() == {"error": "missing or invalid bearer token"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert calls == []
    after = sample(client, "rollout_hook_requests_total", hook="test/count", outcome="unauthorized")
    assert after == before + 4
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        response = client.post("/test/count", json={}, headers={"Authorization": header})
        assert response.status_code == 200
    assert len(calls) == 2


def test_probes_and_metrics_stay_open_with_a_token() -> None:
    client = make_client({"HOOK_TOKEN": TOKEN})
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_a_blank_token_is_no_token_and_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="HOOK_AUTH_DISABLED"):
        make_client({"HOOK_TOKEN": "  "})
    client = make_client({"HOOK_TOKEN": "  ", "HOOK_AUTH_DISABLED": "true"})
    assert client.post("/test/echo", json={"a": 1}).status_code == 200


# --- metrics ---------------------------------------------------------------------------------


def test_request_counter_and_latency_move(client: Any) -> None:
    ok_before = sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="ok")
    count_before = sample(client, "rollout_hook_request_duration_seconds_count", hook="test/echo")
    for _ in range(3):
        assert client.post("/test/echo", json={"x": 1}).status_code == 200
    assert sample(client, "rollout_hook_requests_total", hook="test/echo", outcome="ok") == ok_before + 3
    assert sample(client, "rollout_hook_request_duration_seconds_count", hook="test/echo") == count_before + 3
    inf = sample(client, "rollout_hook_request_duration_seconds_bucket", hook="test/echo", le="+Inf")
    assert inf == count_before + 3


def test_metrics_content_type(client: Any) -> None:
    response = client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "rollout_hook_requests_total" in response.get_data(as_text=True)


def test_rollout_sync_records_decision_bake_patches_and_version() -> None:
    client = make_client(extra={"/rollout/sync": fake_rollout_sync})

    def value(name: str, **labels: str) -> float:
        return sample(client, name, **labels)

    deployed_before = value("rollout_decisions_total", decision="deployed")
    deploys_before = value("rollout_deploys_total")
    succeeded_before = value("rollout_bake_results_total", result="Succeeded")
    applied_before = value("rollout_actuation_patches_total", result="applied")
    conflict_before = value("rollout_actuation_patches_total", result="conflict")

    body = rollout("metrics-a", "ns1", deployed="1.0.0") | {
        "log": {
            "object": "ns1/metrics-a",
            "decision": "deployed",
            "deployed": "1.1.0",
            "bake": ["Succeeded"],
            "patches": ["applied", "applied", "conflict"],
            "changed": ["history"],
        }
    }
    assert client.post("/rollout/sync", json=body).status_code == 200

    assert value("rollout_decisions_total", decision="deployed") == deployed_before + 1
    assert value("rollout_deploys_total") == deploys_before + 1
    assert value("rollout_bake_results_total", result="Succeeded") == succeeded_before + 1
    assert value("rollout_actuation_patches_total", result="applied") == applied_before + 2
    assert value("rollout_actuation_patches_total", result="conflict") == conflict_before + 1
    # No series per Rollout or version: kube-state-metrics carries the deployed version.
    text = client.get("/metrics").get_data(as_text=True)
    assert "metrics-a" not in text and "1.1.0" not in text

    up_to_date = value("rollout_decisions_total", decision="up-to-date")
    body = rollout("metrics-a", "ns1", deployed="1.1.0") | {
        "log": {"object": "ns1/metrics-a", "decision": "up-to-date", "deployed": "1.1.0", "bake": []}
    }
    assert client.post("/rollout/sync", json=body).status_code == 200
    assert value("rollout_decisions_total", decision="up-to-date") == up_to_date + 1
    assert value("rollout_deploys_total") == deploys_before + 1


def test_failed_rollout_sync_counts_patches_but_no_decision() -> None:
    def failing(body: Any, ctx: HookContext) -> dict:
        ctx.log.update({"decision": "deployed", "deployed": "9.9.9", "patches": ["error"]})
        raise RuntimeError("status could not be built")

    client = make_client(extra={"/rollout/sync": failing})
    decisions = sample(client, "rollout_decisions_total", decision="deployed")
    errors = sample(client, "rollout_actuation_patches_total", result="error")
    assert client.post("/rollout/sync", json=rollout("metrics-b")).status_code == 500
    assert sample(client, "rollout_decisions_total", decision="deployed") == decisions
    assert sample(client, "rollout_actuation_patches_total", result="error") == errors + 1
    assert 'rollout="metrics-b"' not in client.get("/metrics").get_data(as_text=True)


def test_decisions_of_other_hooks_are_not_rollout_decisions() -> None:
    def other(body: Any, ctx: HookContext) -> dict:
        ctx.log.update({"object": "a/b", "decision": "reset"})
        return {"status": None, "attachments": []}

    client = make_client(extra={"/test/other": other})
    assert client.post("/test/other", json={}).status_code == 200
    assert sample(client, "rollout_decisions_total", decision="reset") == 0


_RECORDER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from hooks.app import create_app

    def sync(body, ctx):
        ctx.log.update(body["log"])
        return {"status": {}, "children": [], "resyncAfterSeconds": 60}

    class NoActuator:
        pass

    app = create_app(lambda: datetime(2025, 1, 1, tzinfo=UTC), NoActuator(),
                     extra_hooks={"/rollout/sync": sync}, environ={"HOOK_AUTH_DISABLED": "true"})
    client = app.test_client()
    previous, deployed, requests = sys.argv[1] or None, sys.argv[2], int(sys.argv[3])
    for _ in range(requests):
        parent = {"metadata": {"name": "web", "namespace": "apps"}}
        if previous:
            parent["status"] = {"history": [{"version": {"tag": previous}}]}
        log = {"object": "apps/web", "decision": "deployed", "deployed": deployed, "patches": ["applied"]}
        assert client.post("/rollout/sync", json={"parent": parent, "log": log}).status_code == 200
    """
)


def test_multiprocess_metrics_aggregate_across_processes(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    # Two processes one after the other, like two gunicorn workers: the first deploys 1.0.0 twice,
    # the second sees it persisted and deploys 2.0.0 three times.
    for argv in (["", "1.0.0", "2"], ["1.0.0", "2.0.0", "3"]):
        subprocess.run([sys.executable, "-c", _RECORDER, *argv], cwd=REPO, env=env, check=True, timeout=120)
    text = metrics.render(str(directory))[0].decode()
    values: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(name: str, **labels: str) -> float:
        return values.get((name, tuple(sorted(labels.items()))), 0.0)

    assert get("rollout_hook_requests_total", hook="rollout/sync", outcome="ok") == 5
    assert get("rollout_hook_request_duration_seconds_count", hook="rollout/sync") == 5
    assert get("rollout_decisions_total", decision="deployed") == 5
    assert get("rollout_actuation_patches_total", result="applied") == 5
    assert not any(name == "rollout_deployed_version_info" for name, _ in values)


# --- logs ------------------------------------------------------------------------------------


REQUIRED_KEYS = {"ts", "level", "msg", "hook", "object", "decision", "changed", "duration_ms", "http_status"}


def test_one_json_line_per_request_with_handler_fields(captured: io.StringIO) -> None:
    client = make_client(extra={"/rollout/sync": fake_rollout_sync})
    body = rollout("logged", "ns2") | {
        "log": {"object": "ns2/logged", "decision": "blocked-gates", "changed": ["gates"], "deployed": None}
    }
    assert client.post("/rollout/sync", json=body).status_code == 200
    [line] = lines(captured)
    assert set(line) >= REQUIRED_KEYS
    assert line["hook"] == "rollout/sync"
    assert line["object"] == "ns2/logged"
    assert line["decision"] == "blocked-gates"
    assert line["changed"] == ["gates"]
    assert line["http_status"] == 200 and line["level"] == "info"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert datetime.fromisoformat(line["ts"]).tzinfo is not None
    assert "error" not in line


def test_handler_fields_never_hide_the_service_fields(captured: io.StringIO) -> None:
    def noisy(body: Any, ctx: HookContext) -> dict:
        ctx.log.update(
            {"status": "Healthy", "hook": "mine", "msg": "x", "duration_ms": -1, "kind": "HealthCheck"}
        )
        return {"status": None, "attachments": []}

    client = make_client(extra={"/test/noisy": noisy})
    assert client.post("/test/noisy", json={}).status_code == 200
    [line] = lines(captured)
    assert line["hook"] == "test/noisy" and line["msg"] == "hook request" and line["duration_ms"] >= 0
    assert line["http_status"] == 200 and line["status"] == "Healthy" and line["kind"] == "HealthCheck"
    assert line["handler_hook"] == "mine" and line["handler_msg"] == "x" and line["handler_duration_ms"] == -1


def test_error_line_has_error_and_cause(captured: io.StringIO, client: Any) -> None:
    assert client.post("/test/boom", json={}).status_code == 500
    [line] = lines(captured)
    assert line["level"] == "error" and line["http_status"] == 500
    assert line["error"] == "RuntimeError: handler broke"
    assert line["cause"] == "KeyError: 'missing'"
    assert line["object"] == "test/boom"
    assert "Traceback" in line["traceback"]


def test_bad_request_line_is_a_warning(captured: io.StringIO, client: Any) -> None:
    assert client.post("/test/echo", data=b"{oops").status_code == 400
    [line] = lines(captured)
    assert line["level"] == "warning" and line["http_status"] == 400
    assert line["error"].startswith("BadRequest: malformed JSON")
    assert line["cause"].startswith("JSONDecodeError")


def test_logs_never_carry_tokens_headers_or_bodies(captured: io.StringIO) -> None:
    client = make_client({"HOOK_TOKEN": TOKEN})
    marker = "body-marker-5521"
    client.post("/test/echo", json={marker: marker}, headers={"Authorization": "Bearer wrong-guess-77"})
    client.post("/test/echo", json={marker: marker}, headers={"Authorization": f"Bearer {TOKEN}"})
    client.post("/test/boom", json={marker: marker}, headers={"Authorization": f"Bearer {TOKEN}"})
    client.post("/test/echo", data=f'{{"{marker}": '.encode(), headers={"Authorization": f"Bearer {TOKEN}"})
    text = captured.getvalue()
    assert len(lines(captured)) == 4
    for secret in (TOKEN, "wrong-guess-77", marker, "Authorization"):
        assert secret not in text
    assert [line["http_status"] for line in lines(captured)] == [401, 200, 500, 400]


def test_log_level_from_environment() -> None:
    logger = logging.getLogger("hooks")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    try:
        stream = io.StringIO()
        logjson.configure("WARNING", stream)
        logging.getLogger("hooks.request").info("quiet", extra={"fields": {"hook": "x"}})
        logging.getLogger("hooks.request").warning("loud", extra={"fields": {"hook": "y"}})
        assert [line["msg"] for line in lines(stream)] == ["loud"]
        assert lines(stream)[0]["hook"] == "y"
        stream = io.StringIO()
        logjson.configure("no-such-level", stream)  # falls back to info; replaces the handler
        logging.getLogger("hooks.request").info("seen")
        assert [line["msg"] for line in lines(stream)] == ["seen"]
        assert sum(1 for h in logger.handlers if isinstance(h, logging.StreamHandler)) == 1 + sum(
            1 for h in saved[1] if isinstance(h, logging.StreamHandler)
        )
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]


# --- gunicorn, as `make run` starts it -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_recipe() -> list[str]:
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^run:.*\n((?:\t.+\n)+)", makefile, re.MULTILINE)
    assert match, "Makefile has no run recipe"
    return [line.strip() for line in match.group(1).splitlines()]


def run_command() -> tuple[list[str], dict[str, str]]:
    """The `run` recipe's gunicorn command (with $(BIN) resolved) and the variables it sets."""
    [line] = [line for line in run_recipe() if "$(BIN)/gunicorn" in line]
    words = line.split()
    assignments = dict(w.split("=", 1) for w in words[: words.index("$(BIN)/gunicorn")])
    command = words[words.index("$(BIN)/gunicorn") :]
    assert command[1:] == ["--config", "gunicorn.conf.py", "hooks.app:app"]
    return [str(Path(sys.executable).parent / "gunicorn"), *command[1:]], assignments


def test_make_run_disables_authentication_and_says_so() -> None:
    recipe = run_recipe()
    _, assignments = run_command()
    assert assignments == {"HOOK_AUTH_DISABLED": "true"}
    [echo] = [line for line in recipe if line.startswith("@echo")]
    assert "DISABLED" in echo and "HOOK_AUTH_DISABLED=true" in echo


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_make_run_serves_probes_and_aggregates_metrics_of_two_workers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KUBERNETES_", "PROMETHEUS_", "HOOK_", "GUNICORN_"))
    }
    env.update(
        PORT=str(port),
        WEB_CONCURRENCY="2",
        HOME=str(tmp_path),  # no ~/.kube/config: the actuator must start without credentials
        KUBECONFIG=str(tmp_path / "absent-kubeconfig"),
        LOG_LEVEL="info",
    )
    stderr_path = tmp_path / "gunicorn.log"
    with stderr_path.open("wb") as stderr:
        command, assignments = run_command()
        env.update(assignments)
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr_path.read_text()
            try:
                if http("GET", base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become healthy\n" + stderr_path.read_text()
            time.sleep(0.2)
        # Each request on a new connection, so both workers get some of them.
        for _ in range(40):
            status, body = http("GET", base + "/readyz")
            assert status == 200 and json.loads(body)["status"] == "ready"
        for _ in range(12):
            status, body = http("POST", base + "/rollout/sync", b'{"parent": ')
            assert status == 400 and "error" in json.loads(body)
        status, body = http("GET", base + "/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        samples = families["rollout_hook_requests"].samples
        total = sum(
            s.value
            for s in samples
            if s.name == "rollout_hook_requests_total"
            and s.labels == {"hook": "rollout/sync", "outcome": "bad_request"}
        )
        assert total == 12
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    log_lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in log_lines]  # every line gunicorn and the app wrote is JSON
    requests = [line for line in parsed if line.get("msg") == "hook request"]
    assert len(requests) == 12
    assert all(line["hook"] == "rollout/sync" and line["http_status"] == 400 for line in requests)
    assert not [line for line in parsed if line.get("logger") == "gunicorn.access"]  # access log off
    assert process.returncode == 0, stderr_path.read_text()
