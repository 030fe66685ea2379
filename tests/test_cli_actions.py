"""kubectl-kuberik actions: the exact guarded patch each one sends to the fake API server.

The annotations they write: docs/spec/v1alpha1/rollout.md#annotations; the commands: docs/cli.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hooks.cli import main as cli
from hooks.cli.kube import Kube
from tests.cli_world import run
from tests.fakekube import JSON_PATCH, FakeKube, write_kubeconfig

NOW = datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)
NS = "shop"
PATH = "/apis/kuberik.com/v1alpha1/namespaces/shop/rollouts/app"
SPEC = {"releasesImagePolicy": {"name": "app"}, "bakeTime": "10m"}


def rollout(spec: dict | None = None, annotations: dict | None = None, acked: dict | None = None) -> dict:
    md: dict = {"name": "app", "namespace": NS, "generation": 3, "resourceVersion": "41"}
    if annotations is not None:
        md["annotations"] = annotations
    status: dict = {
        "observedGeneration": 3,
        "availableReleases": [
            {"tag": "1.0.0", "discoveredAt": "2026-03-01T09:00:00Z"},
            {"tag": "1.1.0", "discoveredAt": "2026-03-02T08:00:00Z"},
        ],
        "history": [
            {
                "id": 1,
                "version": {"tag": "1.0.0", "discoveredAt": "2026-03-01T09:00:00Z"},
                "timestamp": "2026-03-01T09:00:00Z",
                "message": "Automatic deployment",
                "trigger": "Automatic",
                "triggeredBy": {"kind": "System", "name": "rollout-controller"},
                "bakeStatus": "Failed",
                "bakeStatusMessage": "A HealthCheck reported an error after bake started.",
            }
        ],
    }
    if acked is not None:
        status["acknowledgedAnnotations"] = acked
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": md,
        "spec": dict(spec if spec is not None else SPEC),
        "status": status,
    }


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "clock", lambda: NOW)


def sent(fake: FakeKube) -> list:
    patches = fake.patches()
    for p in patches:
        assert p.path == PATH
        assert p.content_type == JSON_PATCH
    return [p.body for p in patches]


def act(fake: FakeKube, obj: dict, *argv: str) -> tuple[int, str, str]:
    fake.put(obj)
    return run([*argv, "-n", NS])


ANN = "/metadata/annotations"


def ann(key: str) -> str:
    return f"{ANN}/rollout.kuberik.com~1{key}"


@pytest.mark.parametrize(
    ("argv", "obj", "expected"),
    [
        (
            ["pin", "app", "1.0.0", "--message", "roll back: 1.1.0 leaks", "--user", "alice"],
            rollout(),
            [
                {"op": "test", "path": "/spec", "value": SPEC},
                {"op": "add", "path": "/spec/wantedVersion", "value": "1.0.0"},
                # No annotations yet: the test guards the observed metadata, then adds the map.
                {"op": "test", "path": "/metadata", "value": None},  # filled below: the observed metadata
                {
                    "op": "add",
                    "path": ANN,
                    "value": {"rollout.kuberik.com/deploy-message": "roll back: 1.1.0 leaks"},
                },
                {
                    "op": "test",
                    "path": ANN,
                    "value": {"rollout.kuberik.com/deploy-message": "roll back: 1.1.0 leaks"},
                },
                {"op": "add", "path": ann("deploy-user"), "value": "alice"},
            ],
        ),
        (
            ["pin", "app", "1.1.0"],
            rollout(spec={**SPEC, "wantedVersion": "1.0.0"}),
            [
                {"op": "test", "path": "/spec/wantedVersion", "value": "1.0.0"},
                {"op": "replace", "path": "/spec/wantedVersion", "value": "1.1.0"},
            ],
        ),
        (
            ["unpin", "app"],
            rollout(spec={**SPEC, "wantedVersion": "1.0.0"}),
            [
                {"op": "test", "path": "/spec/wantedVersion", "value": "1.0.0"},
                {"op": "remove", "path": "/spec/wantedVersion"},
            ],
        ),
        (
            ["deploy", "app", "1.1.0", "--user", "bob"],
            rollout(annotations={"team": "web"}),
            [
                {"op": "test", "path": ANN, "value": {"team": "web"}},
                {"op": "add", "path": ann("force-deploy"), "value": "1.1.0@20260302T093005Z"},
                {
                    "op": "test",
                    "path": ANN,
                    "value": {"team": "web", "rollout.kuberik.com/force-deploy": "1.1.0@20260302T093005Z"},
                },
                {"op": "add", "path": ann("deploy-user"), "value": "bob"},
            ],
        ),
        (
            ["deploy", "app", "1.1.0"],
            rollout(
                annotations={"rollout.kuberik.com/force-deploy": "1.1.0@20260302T093005Z"},
                acked={"rollout.kuberik.com/force-deploy": "1.1.0@20260302T093005Z"},
            ),
            [
                {"op": "test", "path": ann("force-deploy"), "value": "1.1.0@20260302T093005Z"},
                {"op": "replace", "path": ann("force-deploy"), "value": "1.1.0@20260302T093005Z-1"},
            ],
        ),
        (
            ["retry", "app"],
            rollout(annotations={"rollout.kuberik.com/retry": "2026-03-01T10:00:00Z"}),
            [
                {"op": "test", "path": ann("retry"), "value": "2026-03-01T10:00:00Z"},
                {"op": "replace", "path": ann("retry"), "value": "2026-03-02T09:30:05Z"},
            ],
        ),
        (
            ["unblock", "app"],
            rollout(annotations={}),
            [
                {"op": "test", "path": ANN, "value": {}},
                {"op": "add", "path": ann("unblock-failed"), "value": "true"},
            ],
        ),
        (
            ["unblock", "app"],
            rollout(
                annotations={"rollout.kuberik.com/unblock-failed": "true"},
                acked={"rollout.kuberik.com/unblock-failed": "true"},
            ),
            [
                {"op": "test", "path": ann("unblock-failed"), "value": "true"},
                {"op": "replace", "path": ann("unblock-failed"), "value": "True"},
            ],
        ),
        (
            ["unblock", "app"],
            rollout(
                annotations={"rollout.kuberik.com/unblock-failed": "True"},
                acked={"rollout.kuberik.com/unblock-failed": "True"},
            ),
            [
                {"op": "test", "path": ann("unblock-failed"), "value": "True"},
                {"op": "replace", "path": ann("unblock-failed"), "value": "true"},
            ],
        ),
        (
            ["bypass", "app", "1.1.0"],
            rollout(annotations={}),
            [
                {"op": "test", "path": ANN, "value": {}},
                {"op": "add", "path": ann("bypass-gates"), "value": "1.1.0@20260302T093005Z"},
            ],
        ),
        (
            ["suspend", "app"],
            rollout(),
            [
                {"op": "test", "path": "/spec", "value": SPEC},
                {"op": "add", "path": "/spec/suspend", "value": True},
            ],
        ),
        (
            ["resume", "app"],
            rollout(spec={**SPEC, "suspend": True}),
            [
                {"op": "test", "path": "/spec/suspend", "value": True},
                {"op": "replace", "path": "/spec/suspend", "value": False},
            ],
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and isinstance(v[0], str) else None,
)
def test_action_sends_exactly_the_documented_patch(fake_kube, argv, obj, expected):
    code, out, err = act(fake_kube, obj, *argv)
    assert (code, err) == (0, ""), err
    stored_before = obj["metadata"]
    for op in expected:
        if op["path"] == "/metadata" and op["value"] is None:  # the observed metadata, as stored
            op["value"] = {**stored_before, "generation": 3, "resourceVersion": "41"}
    assert sent(fake_kube) == [expected]
    assert "Rollout shop/app: " in out
    # The fake applied it: the Rollout now carries the change (and nothing else moved).
    after = fake_kube.get("Rollout", NS, "app")
    assert after is not None
    assert after["status"] == obj["status"]


def test_pin_changes_the_spec_and_records_message_in_the_same_object(fake_kube):
    code, _, _ = act(fake_kube, rollout(), "pin", "app", "1.0.0", "--message", "hotfix", "--user", "alice")
    assert code == 0
    after = fake_kube.get("Rollout", NS, "app")
    assert after["spec"]["wantedVersion"] == "1.0.0"
    assert after["metadata"]["annotations"] == {
        "rollout.kuberik.com/deploy-message": "hotfix",
        "rollout.kuberik.com/deploy-user": "alice",
    }
    assert len(fake_kube.patches()) == 1  # one change: the pin and its message together


@pytest.mark.parametrize(
    ("argv", "obj", "text"),
    [
        (["unpin", "app"], rollout(), "not pinned"),
        (["resume", "app"], rollout(), "not suspended"),
        (
            ["unblock", "app"],
            rollout(annotations={"rollout.kuberik.com/unblock-failed": "TRUE"}),
            "unblock already requested (rollout.kuberik.com/unblock-failed=TRUE, not acted on yet)",
        ),
        (["suspend", "app"], rollout(spec={**SPEC, "suspend": True}), "already suspended"),
        (
            ["pin", "app", "1.0.0"],
            rollout(spec={**SPEC, "wantedVersion": "1.0.0"}),
            "already pinned to 1.0.0",
        ),
    ],
)
def test_action_with_nothing_to_do_sends_nothing(fake_kube, argv, obj, text):
    code, out, _ = act(fake_kube, obj, *argv)
    assert code == 0
    assert f"nothing to do, {text}" in out
    assert fake_kube.patches() == []


def test_dry_run_prints_the_patch_and_sends_nothing(fake_kube):
    code, out, _ = act(fake_kube, rollout(annotations={}), "deploy", "app", "1.1.0", "--dry-run")
    assert code == 0
    assert fake_kube.patches() == []
    assert out.splitlines()[0] == f"PATCH {PATH} (application/json-patch+json)"
    body = out[out.index("[") : out.rindex("]") + 1]
    assert json.loads(body) == [
        {"op": "test", "path": ANN, "value": {}},
        {"op": "add", "path": ann("force-deploy"), "value": "1.1.0@20260302T093005Z"},
    ]
    assert out.rstrip().endswith("dry run: nothing sent")


def test_deploy_of_an_unknown_tag_warns_that_the_controller_will_wait(fake_kube):
    code, _, err = act(fake_kube, rollout(annotations={}), "deploy", "app", "9.9.9")
    assert code == 0
    assert "9.9.9 is not a known release" in err
    assert "ForceDeployVersionUnknown" in err


def test_invalid_tag_is_refused_before_anything_is_sent(fake_kube):
    code, _, err = act(fake_kube, rollout(), "pin", "app", "1.0.0;rm")
    assert code == 1
    assert err.startswith("error: '1.0.0;rm' is not a valid OCI tag")
    assert fake_kube.patches() == []


def test_a_rollout_changed_meanwhile_gets_a_422_and_a_re_run_hint(fake_kube, monkeypatch):
    """Someone pins between the CLI's read and its patch: the `test` fails on the API server."""
    original = Kube.json_patch

    def racing(self, kind, name, namespace, ops):
        changed = fake_kube.get("Rollout", NS, "app")
        changed["spec"]["wantedVersion"] = "1.0.0"
        fake_kube.put(changed)
        return original(self, kind, name, namespace, ops)

    monkeypatch.setattr(Kube, "json_patch", racing)
    code, out, err = act(fake_kube, rollout(), "suspend", "app")
    assert code == 1
    assert err == "error: Rollout shop/app changed meanwhile (the patch's test failed): re-run\n"
    assert fake_kube.get("Rollout", NS, "app")["spec"].get("suspend") is None
    assert "Traceback" not in out + err


def test_a_422_with_field_causes_is_reported_as_invalid_not_as_a_race(fake_kube):
    details = {"causes": [{"reason": "FieldValueInvalid", "field": "spec.wantedVersion", "message": "bad"}]}
    fake_kube.fail(
        422, path=PATH, message='Rollout.kuberik.com "app" is invalid: spec.wantedVersion', details=details
    )
    code, _, err = act(fake_kube, rollout(), "pin", "app", "1.0.0")
    assert code == 1
    assert "API server answered 422" in err
    assert "spec.wantedVersion" in err


def test_rbac_denial_names_the_object_and_the_verb(fake_kube):
    message = (
        'rollouts.kuberik.com "app" is forbidden: User "alice" cannot patch resource "rollouts" in API '
        'group "kuberik.com" in the namespace "shop"'
    )
    fake_kube.fail(403, path=PATH, message=message, times=None)
    fake_kube.put(rollout())
    # GET is denied too (the fault applies to every method on the path).
    code, _out, err = run(["retry", "app", "-n", NS])
    assert code == 1
    assert err.startswith('error: forbidden: you may not get rollouts.kuberik.com "app" in namespace shop: ')
    assert 'User "alice" cannot patch' in err
    assert err.count("\n") == 1


def test_unknown_rollout(fake_kube):
    code, _, err = run(["suspend", "nope", "-n", NS])
    assert (code, err) == (1, "error: Rollout nope not found in namespace shop\n")


def test_unreachable_cluster_is_one_line(tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KUBECONFIG", str(config))
    code, _out, err = run(["suspend", "app", "-n", NS])
    assert code == 1
    assert err.startswith(f"error: cannot reach the Kubernetes API at http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_missing_kubeconfig_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    code, _, err = run(["get"])
    assert code == 1
    assert err == f"error: no kubeconfig file at {tmp_path / 'absent'} ($KUBECONFIG)\n"


def test_namespace_comes_from_the_kubeconfig_context(fake_kube, tmp_path, monkeypatch):
    import yaml

    config = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    config["contexts"][0]["context"]["namespace"] = NS
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    fake_kube.put(rollout())
    code, out, err = run(["suspend", "app", "--dry-run"])
    assert (code, err) == (0, "")
    assert PATH in out


def test_usage_errors_exit_1_without_traceback(fake_kube):
    code, _, err = run(["pin", "app"])
    assert code == 1
    assert "error: the following arguments are required: TAG" in err
    code, _, err = run(["frobnicate"])
    assert code == 1
    assert "invalid choice" in err


# --- Flux-applied Rollouts ------------------------------------------------------------------------


def flux_applied(obj: dict, owned: dict) -> dict:
    """The labels and the managedFields entry kustomize-controller's server-side apply leaves."""
    obj["metadata"]["labels"] = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    obj["metadata"]["managedFields"] = [
        {
            "manager": "kustomize-controller",
            "operation": "Apply",
            "apiVersion": "kuberik.com/v1alpha1",
            "time": "2026-03-01T09:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": owned,
        },
        {
            "manager": "metacontroller",
            "operation": "Update",
            "apiVersion": "kuberik.com/v1alpha1",
            "time": "2026-03-02T09:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {".": {}, "f:history": {}}},
            "subresource": "status",
        },
    ]
    return obj


GIT_OWNS_SPEC: dict[str, dict] = {
    "f:metadata": {"f:labels": {"f:kustomize.toolkit.fluxcd.io/name": {}}},
    "f:spec": {"f:releasesImagePolicy": {"f:name": {}}, "f:bakeTime": {}},
}


def test_spec_change_on_a_flux_rollout_prints_the_git_change_instead(fake_kube):
    code, out, err = act(
        fake_kube, flux_applied(rollout(), GIT_OWNS_SPEC), "pin", "app", "1.0.0", "--message", "m"
    )
    assert code == 1
    assert fake_kube.patches() == []
    assert "applied by Flux Kustomization flux-system/apps" in err
    assert out == (
        "Make the change in Git instead, in the Rollout's manifest:\n"
        "  spec:\n"
        "    wantedVersion: 1.0.0\n"
        "  metadata:\n"
        "    annotations:\n"
        "      rollout.kuberik.com/deploy-message: m\n"
        "Nothing sent (--force sends it anyway).\n"
    )


def test_force_sends_a_spec_change_on_a_flux_rollout(fake_kube):
    code, _out, err = act(fake_kube, flux_applied(rollout(), GIT_OWNS_SPEC), "suspend", "app", "--force")
    assert code == 0
    assert len(fake_kube.patches()) == 1
    assert "warning:" in err


def test_annotation_not_in_git_is_kept_by_flux_and_sent(fake_kube):
    obj = flux_applied(rollout(annotations={"team": "web"}), GIT_OWNS_SPEC)
    code, _, err = act(fake_kube, obj, "retry", "app")
    assert code == 0
    assert len(fake_kube.patches()) == 1
    assert "not in Git" in err and "keeps fields it does not own" in err


def test_annotation_kept_in_git_is_not_overwritten_from_the_cli(fake_kube):
    owned = {
        **GIT_OWNS_SPEC,
        "f:metadata": {"f:annotations": {"f:rollout.kuberik.com/force-deploy": {}}},
    }
    obj = flux_applied(
        rollout(annotations={"rollout.kuberik.com/force-deploy": "1.0.0"}),
        owned,
    )
    code, out, err = act(fake_kube, obj, "deploy", "app", "1.1.0")
    assert code == 1
    assert fake_kube.patches() == []
    assert "owns metadata.annotations.rollout.kuberik.com/force-deploy" in err
    assert "rollout.kuberik.com/force-deploy: 1.1.0@20260302T093005Z" in out


def test_rbac_denial_of_the_patch_names_the_verb(fake_kube, monkeypatch):
    """Reading is allowed, patching is not (a read-only role)."""
    message = (
        'rollouts.kuberik.com "app" is forbidden: User "viewer" cannot patch resource "rollouts" in API '
        'group "kuberik.com" in the namespace "shop"'
    )
    original = Kube.json_patch

    def denied(self, kind, name, namespace, ops):
        fake_kube.fail(403, path=PATH, message=message, times=1)
        return original(self, kind, name, namespace, ops)

    monkeypatch.setattr(Kube, "json_patch", denied)
    code, _, err = act(fake_kube, rollout(), "suspend", "app")
    assert code == 1
    assert (
        err
        == f'error: forbidden: you may not patch rollouts.kuberik.com "app" in namespace shop: {message}\n'
    )
    assert fake_kube.get("Rollout", NS, "app")["spec"] == SPEC
