"""The install (`kubectl kustomize metacontroller/`), the Dockerfile and gunicorn.conf.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from hooks.app import HOOKS
from tests.crd_schema import load_crd, our_crd_files, validate_object

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "rollout-controller"
SERVICE = "rollout-hooks"
TOKEN_SECRET = {"name": "rollout-hooks-token", "namespace": NAMESPACE, "key": "token"}
PATCHABLE = {
    ("source.toolkit.fluxcd.io", "ocirepositories"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations"),
}  # never the Rollout: the controller does not write it (docs/targets.md)
CONTROLLER_KINDS = ("CompositeController", "DecoratorController")

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@cache
def built() -> tuple[dict, ...]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "metacontroller")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(kind: str) -> list[dict]:
    return [doc for doc in built() if doc["kind"] == kind]


def one(kind: str) -> dict:
    [obj] = objects(kind)
    return obj


def gunicorn_setting(name: str) -> int:
    match = re.search(rf"^{name} = (\d+)$", (REPO / "gunicorn.conf.py").read_text(), re.MULTILINE)
    assert match, name
    return int(match.group(1))


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def pod_labels() -> dict:
    return one("Deployment")["spec"]["template"]["metadata"]["labels"]


def selects_pods(selector: dict) -> bool:
    labels = pod_labels()
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- the whole build --------------------------------------------------------------------------


def test_build_contains_exactly_the_install() -> None:
    kinds = sorted(doc["kind"] for doc in built())
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "CompositeController",
            "CompositeController",
            "CompositeController",
            "DecoratorController",
        ]
    )
    assert one("Namespace")["metadata"]["name"] == NAMESPACE


def test_namespaced_objects_live_in_the_namespace_and_cluster_objects_have_none() -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", *CONTROLLER_KINDS}
    for doc in built():
        namespace = doc["metadata"].get("namespace")
        if doc["kind"] in cluster_scoped:
            assert namespace is None, doc["kind"]
        else:
            assert namespace == NAMESPACE, doc["kind"]


def test_image_is_set_through_kustomize_images() -> None:
    kustomization = yaml.safe_load((REPO / "metacontroller" / "kustomization.yaml").read_text())
    names = [entry["name"] for entry in kustomization["images"]]
    assert names == ["ghcr.io/kuberik/rollout-controller-hooks"]
    [container] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/kuberik/rollout-controller-hooks:")


# --- Deployment ---------------------------------------------------------------------------------


def test_deployment_is_highly_available() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert selects_pods(spec["selector"]["matchLabels"])
    [term] = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert selects_pods(term["podAffinityTerm"]["labelSelector"]["matchLabels"])


def test_pod_security() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False
    # Writable paths only on emptyDirs: /tmp (metrics files) and /dev/shm (worker heartbeats).
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/tmp", "/dev/shm"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_resources_and_probes() -> None:
    [container] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}, bound
    [port] = container["ports"]
    assert port["name"] == "http" and port["containerPort"] == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_environment() -> None:
    [container] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ROLLOUT_ACTUATION"]["value"] == "apply"
    assert env["PORT"]["value"] == str(container["ports"][0]["containerPort"])
    # Authentication fails closed: the token comes from the required Secret, mounted as files
    # (re-read on rotation); the key Metacontroller sends is the file the hooks read.
    assert "HOOK_TOKEN" not in env and "HOOK_AUTH_DISABLED" not in env
    pod = one("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == TOKEN_SECRET["name"]]
    assert volume["secret"].get("optional", False) is False
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert "subPath" not in mount  # a subPath mount is never updated by the kubelet
    assert env["HOOK_TOKEN_FILE"]["value"] == f"{mount['mountPath']}/{TOKEN_SECRET['key']}"


def test_shutdown_and_timeouts_fit_together() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace == 30
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert int(pre_stop[1]) + gunicorn_setting("graceful_timeout") < grace
    hook_timeouts = {
        seconds(hook["webhook"]["timeout"])
        for doc in built()
        if doc["kind"] in CONTROLLER_KINDS
        for hook in doc["spec"]["hooks"].values()
    }
    assert gunicorn_setting("timeout") < min(hook_timeouts)


# --- Service, PDB, NetworkPolicy ---------------------------------------------------------------------


def test_service_reaches_the_pods() -> None:
    service = one("Service")
    assert service["metadata"]["name"] == SERVICE
    assert selects_pods(service["spec"]["selector"])
    [port] = service["spec"]["ports"]
    assert port["port"] == 80 and port["targetPort"] == "http"


def test_pod_disruption_budget() -> None:
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selects_pods(pdb["spec"]["selector"]["matchLabels"])


def test_network_policy_admits_only_metacontroller_and_the_scrape_on_the_hook_port() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert selects_pods(policy["podSelector"]["matchLabels"])
    assert policy["policyTypes"] == ["Ingress"]
    [hooks, scrape] = policy["ingress"]
    assert hooks["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "metacontroller"}}}
    ]
    assert hooks["ports"] == [{"protocol": "TCP", "port": 8080}]
    # Prometheus (docs/events-and-metrics.md): prometheus-operator's pods in `monitoring`, or
    # any pod of a namespace that opts in
    assert scrape["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        },
        {"namespaceSelector": {"matchLabels": {"rollout.kuberik.com/metrics-scraper": "true"}}},
    ]
    assert scrape["ports"] == [{"protocol": "TCP", "port": 8080}]


# --- RBAC ------------------------------------------------------------------------------------------


def test_cluster_role_is_patch_only_on_exactly_three_resources_and_creates_events() -> None:
    rules = one("ClusterRole")["rules"]
    events = {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}
    assert rules.count(events) == 1, "create on events.k8s.io events, nothing more (docs/targets.md)"
    rules = [r for r in rules if r != events]
    granted = set()
    for rule in rules:
        assert rule["verbs"] == ["patch"], rule
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
        granted |= {(group, resource) for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == PATCHABLE
    assert sum(len(r["apiGroups"]) * len(r["resources"]) for r in rules) == len(PATCHABLE)
    assert not objects("Role") and not objects("RoleBinding")


def test_binding_gives_the_role_to_the_hook_service_account() -> None:
    binding = one("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one("ClusterRole")["metadata"]["name"],
    }
    account = one("ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


# --- Metacontroller objects ---------------------------------------------------------------------------


def controllers() -> list[dict]:
    return [doc for doc in built() if doc["kind"] in CONTROLLER_KINDS]


def test_every_controller_matches_the_metacontroller_schema() -> None:
    assert len(controllers()) == 4
    for controller in controllers():
        validate_object(controller)


def test_every_hook_route_is_wired_once_with_v2_to_the_service() -> None:
    wired = []
    for controller in controllers():
        hooks = controller["spec"]["hooks"]
        assert set(hooks) == {"customize", "sync"}, controller["metadata"]["name"]
        for hook in hooks.values():
            assert hook["version"] == "v2"
            url = urlsplit(hook["webhook"]["url"])
            assert (url.scheme, url.hostname, url.port) == ("http", f"{SERVICE}.{NAMESPACE}", 80)
            wired.append(url.path)
    assert sorted(wired) == sorted(HOOKS)


def test_every_controller_sends_the_bearer_token_from_the_secret() -> None:
    for controller in controllers():
        [endpoint] = controller["spec"]["endpointConfigs"]
        hosts = {urlsplit(h["webhook"]["url"]).netloc for h in controller["spec"]["hooks"].values()}
        assert hosts == {endpoint["host"]}  # the entry applies to every hook of the controller
        assert endpoint["authorization"] == {"type": "Bearer", "secretRef": TOKEN_SECRET}
        for hook in controller["spec"]["hooks"].values():  # a per-hook setting would override it
            assert not set(hook["webhook"]) & {"authorization", "basicAuth", "caBundle", "clientTLS"}


def _crd_by_plural() -> dict[str, dict]:
    crds = {}
    for path in our_crd_files():
        crd = load_crd(path)
        crds[crd["spec"]["names"]["plural"]] = crd
    return crds


def test_controllers_watch_our_resources() -> None:
    crds = _crd_by_plural()
    by_name = {c["metadata"]["name"]: c for c in controllers()}
    assert set(by_name) == {
        "rollouts.kuberik.com",
        "healthchecks.kuberik.com",
        "rolloutschedules.kuberik.com",
        "clusterrolloutschedules.kuberik.com",
    }
    rollouts = by_name["rollouts.kuberik.com"]
    assert rollouts["kind"] == "CompositeController"
    assert rollouts["spec"]["parentResource"] == {
        "apiVersion": "kuberik.com/v1alpha1",
        "resource": "rollouts",
    }
    assert "childResources" not in rollouts["spec"]
    for name in ("rolloutschedules", "clusterrolloutschedules"):
        schedule = by_name[f"{name}.kuberik.com"]
        assert schedule["kind"] == "CompositeController"
        assert schedule["spec"]["parentResource"] == {"apiVersion": "kuberik.com/v1alpha1", "resource": name}
        assert schedule["spec"]["childResources"] == [
            {
                "apiVersion": "kuberik.com/v1alpha1",
                "resource": "rolloutgates",
                "updateStrategy": {"method": "InPlace"},
            }
        ]
    for composite in [
        rollouts,
        by_name["rolloutschedules.kuberik.com"],
        by_name["clusterrolloutschedules.kuberik.com"],
    ]:
        assert composite["spec"]["generateSelector"] is True
    healthchecks = by_name["healthchecks.kuberik.com"]
    assert healthchecks["kind"] == "DecoratorController"
    assert healthchecks["spec"]["resources"] == [
        {"apiVersion": "kuberik.com/v1alpha1", "resource": "healthchecks"}
    ]
    for controller in controllers():
        # the hooks ask for their own resyncs; a periodic one re-sends everything (docs/scale.md)
        assert "resyncPeriodSeconds" not in controller["spec"]
        spec = controller["spec"]
        resources = [spec.get("parentResource"), *spec.get("resources", []), *spec.get("childResources", [])]
        for resource in filter(None, resources):
            crd = crds[resource["resource"]]
            group, version = resource["apiVersion"].split("/")
            assert crd["spec"]["group"] == group
            assert version in [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert crds["clusterrolloutschedules"]["spec"]["scope"] == "Cluster"


# --- image --------------------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.MULTILINE)
    assert len(stages) == 2 and all(image == "python:3.11-slim" for image, _ in stages)
    assert stages[0][1] == "builder" and "--from=builder" in text
    runtime = text.split("\nFROM python:3.11-slim\n", 1)[1]
    assert "pip wheel" not in runtime and "apt-get" not in runtime  # no build tools in the final stage
    assert "--no-index" in runtime
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    [user] = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    assert int(uid) == one("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert "HEALTHCHECK" not in text
    assert 'ENTRYPOINT ["gunicorn", "--config", "gunicorn.conf.py", "hooks.app:app"]' in runtime
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything is excluded unless listed
    assert {"!requirements.txt", "!gunicorn.conf.py", "!hooks/"} <= set(ignore)
