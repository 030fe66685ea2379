"""Bearer-token authentication fails closed (docs/service.md): start-up refusals, rotation, forgeries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.payload import ANNOTATED, NOW, rollout_request
from hooks import auth
from hooks.actuator import Actuator
from hooks.app import ConfigError, HookContext, create_app

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = "old-token-5b1e", "new-token-c93a"


def ok(body: Any, ctx: HookContext) -> dict:
    return {"status": {}, "children": []}


def client_for(environ: dict[str, str]) -> Any:
    return create_app(clock=lambda: NOW, actuator=object(), extra_hooks={"/test/ok": ok}, environ=environ)


def status_with(client: Any, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.test_client().post("/test/ok", json={}, headers=headers).status_code


@pytest.fixture
def instant_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-check the token file on every request (the service checks at most once a second)."""
    monkeypatch.setattr(auth, "RELOAD_INTERVAL_S", 0.0)


# --- start-up refusals ------------------------------------------------------------------------------


def test_no_token_and_no_switch_refuses_to_create_the_app_naming_both_variables():
    with pytest.raises(ConfigError) as refused:
        client_for({})
    message = str(refused.value)
    assert "HOOK_TOKEN" in message and "HOOK_AUTH_DISABLED=true" in message


@pytest.mark.parametrize("value", ["", "false", "FALSE"])
def test_a_switch_that_is_not_true_does_not_disable(value: str):
    with pytest.raises(ConfigError, match="HOOK_TOKEN"):
        client_for({"HOOK_AUTH_DISABLED": value})


@pytest.mark.parametrize("value", ["yes", "1", "ture", "on"])
def test_a_meaningless_switch_refuses_to_start(value: str):
    with pytest.raises(ConfigError, match="HOOK_AUTH_DISABLED"):
        client_for({"HOOK_AUTH_DISABLED": value})


def test_the_switch_is_the_only_way_to_serve_without_a_token():
    app = client_for({"HOOK_AUTH_DISABLED": "true"})
    assert status_with(app, None) == 200


def test_a_token_that_is_set_is_enforced_whatever_the_switch_says():
    app = client_for({"HOOK_TOKEN": OLD, "HOOK_AUTH_DISABLED": "true"})
    assert status_with(app, None) == 401
    assert status_with(app, "guess") == 401
    assert status_with(app, OLD) == 200


@pytest.mark.parametrize("content", [None, "", "\n  \n"])
def test_a_missing_or_empty_token_file_refuses_to_start_even_with_the_switch(tmp_path: Path, content):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    for environ in (
        {"HOOK_TOKEN_FILE": str(path)},
        {"HOOK_TOKEN_FILE": str(path), "HOOK_AUTH_DISABLED": "true"},
    ):
        with pytest.raises(ConfigError, match="HOOK_TOKEN_FILE"):
            client_for(environ)


def test_ambiguous_token_settings_refuse_to_start(tmp_path: Path):
    path = tmp_path / "token"
    path.write_text(OLD)
    with pytest.raises(ConfigError, match="only one"):
        client_for({"HOOK_TOKEN": OLD, "HOOK_TOKEN_FILE": str(path)})
    with pytest.raises(ConfigError, match="current token is missing"):
        client_for({"HOOK_PREVIOUS_TOKEN": OLD, "HOOK_AUTH_DISABLED": "true"})


@pytest.mark.parametrize("mode", ["dryrun", "Dry-Run", "APPLY", "off", "none", "apply,dry-run"])
def test_an_unknown_actuation_mode_refuses_to_start(mode: str):
    with pytest.raises(ConfigError, match="ROLLOUT_ACTUATION"):
        client_for({"HOOK_AUTH_DISABLED": "true", "ROLLOUT_ACTUATION": mode})


@pytest.mark.parametrize("mode", ["apply", "dry-run"])
def test_the_two_actuation_modes_start(mode: str):
    app = create_app(clock=lambda: NOW, environ={"HOOK_AUTH_DISABLED": "true", "ROLLOUT_ACTUATION": mode})
    assert app.test_client().get("/readyz").status_code == 200


def test_gunicorn_refuses_to_start_without_a_token(tmp_path: Path):
    """The pod fails to start instead of serving unauthenticated (the worker cannot boot)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOK_", "PROMETHEUS_", "KUBERNETES_"))}
    env.update(HOME=str(tmp_path), KUBECONFIG=str(tmp_path / "absent"), WEB_CONCURRENCY="1")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    done = subprocess.run(
        [gunicorn, "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "hooks.app:app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "HOOK_TOKEN or HOOK_TOKEN_FILE" in done.stderr and "HOOK_AUTH_DISABLED=true" in done.stderr


# --- rotation --------------------------------------------------------------------------------------


def test_previous_token_from_the_environment_is_accepted_too():
    app = client_for({"HOOK_TOKEN": NEW, "HOOK_PREVIOUS_TOKEN": OLD})
    assert [status_with(app, t) for t in (NEW, OLD, "other")] == [200, 200, 401]


def test_a_rotated_token_file_takes_effect_without_a_restart(tmp_path: Path, instant_reload):
    path = tmp_path / "token"
    path.write_text(OLD + "\n")
    app = client_for({"HOOK_TOKEN_FILE": str(path)})
    assert [status_with(app, t) for t in (OLD, NEW)] == [200, 401]
    path.write_text(f"{NEW}\n{OLD}\n")  # rotation window: the new token and the previous one
    assert [status_with(app, t) for t in (NEW, OLD)] == [200, 200]
    path.write_text(NEW)
    assert [status_with(app, t) for t in (NEW, OLD)] == [200, 401]


def test_a_secret_volume_swapped_the_kubelet_way_is_reread(tmp_path: Path, instant_reload):
    """kubelet writes a new directory and swaps the `..data` symlink; `token` links through it."""
    mount = tmp_path / "secret"
    mount.mkdir()
    (mount / "..v1").mkdir()
    (mount / "..v1" / "token").write_text(OLD)
    (mount / "..data").symlink_to("..v1")
    (mount / "token").symlink_to("..data/token")
    (mount / "previous-token").symlink_to("..data/previous-token")
    app = client_for(
        {"HOOK_TOKEN_FILE": str(mount / "token"), "HOOK_PREVIOUS_TOKEN_FILE": str(mount / "previous-token")}
    )
    assert [status_with(app, t) for t in (OLD, NEW)] == [200, 401]
    (mount / "..v2").mkdir()
    (mount / "..v2" / "token").write_text(NEW)
    (mount / "..v2" / "previous-token").write_text(OLD)
    (mount / "..data_tmp").symlink_to("..v2")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert [status_with(app, t) for t in (NEW, OLD, "x")] == [200, 200, 401]


def test_a_token_file_that_vanishes_keeps_the_last_tokens_never_opens(tmp_path: Path, instant_reload):
    path = tmp_path / "token"
    path.write_text(OLD)
    app = client_for({"HOOK_TOKEN_FILE": str(path)})
    path.unlink()
    assert [status_with(app, t) for t in (OLD, None, "x")] == [200, 401, 401]
    path.write_text("")
    assert [status_with(app, t) for t in (OLD, None)] == [200, 401]


def test_the_reload_is_rate_limited(tmp_path: Path):
    now = [0.0]
    path = tmp_path / "token"
    path.write_text(OLD)
    checker = auth.TokenAuth(token_file=str(path), clock=lambda: now[0])
    path.write_text(NEW)
    now[0] = 0.5
    assert checker.check(f"Bearer {OLD}") and not checker.check(f"Bearer {NEW}")
    now[0] = 1.5
    assert checker.check(f"Bearer {NEW}") and not checker.check(f"Bearer {OLD}")


# --- a forged request -------------------------------------------------------------------------------


def test_a_forged_request_gets_401_and_no_patch_is_sent(fake_kube, monkeypatch: pytest.MonkeyPatch):
    request = rollout_request(2 * ANNOTATED, release_count=5, checks=2, gates=0, history_entries=3)
    request["parent"]["spec"].pop("bakeTime")
    for group in (
        "OCIRepository.source.toolkit.fluxcd.io/v1",
        "Kustomization.kustomize.toolkit.fluxcd.io/v1",
    ):
        for obj in request["related"][group].values():
            fake_kube.put(obj)
    actuator = Actuator.from_env(os.environ)
    try:
        app = create_app(clock=lambda: NOW, actuator=actuator, environ={**os.environ, "HOOK_TOKEN": NEW})
        client = app.test_client()
        good = {"Authorization": f"Bearer {NEW}"}
        # Write-ahead: the first sync records the deploy; the next one (its status persisted) patches.
        first = client.post("/rollout/sync", json=request, headers=good)
        assert first.status_code == 200 and fake_kube.requests == []
        request["parent"]["status"] = first.get_json()["status"]
        body = orjson.dumps(request)
        for headers in ({}, {"Authorization": f"Bearer {OLD}"}, {"Authorization": f"Basic {NEW}"}):
            response = client.post(
                "/rollout/sync", data=body, content_type="application/json", headers=headers
            )
            assert response.status_code == 401
        assert fake_kube.requests == []
        response = client.post("/rollout/sync", data=body, content_type="application/json", headers=good)
        assert response.status_code == 200
        assert fake_kube.patches(), "the same request with the token does patch: the test can fail"
    finally:
        actuator.close()
