"""`pip install .` from a clean copy of the repository gives a working `kubectl-kuberik` (docs/cli.md).

One install into a fresh virtual environment (pip may take the pinned dependencies from its
cache or the package index); then the console script runs, and kubectl finds it as a plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _clean_copy(target: Path) -> Path:
    """The committed and staged files only, as a fresh clone would have them (no .venv, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_pip_install_gives_the_console_script(tmp_path):
    source = _clean_copy(tmp_path / "src")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    script = bin_dir / "kubectl-kuberik"
    assert script.is_file()
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert helped.returncode == 0, helped.stderr
    commands = "get status history why pin unpin deploy retry unblock bypass suspend resume plan"
    for command in commands.split():
        assert command in helped.stdout

    # The installed package plans offline from the examples, without the repository on sys.path.
    planned = subprocess.run(
        [
            str(script),
            "plan",
            "podinfo/podinfo",
            "-f",
            str(REPO / "examples"),
            "--at",
            "2026-12-01T09:30:00Z",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert planned.returncode == 0, planned.stderr
    assert '"rollout": "podinfo/podinfo"' in planned.stdout

    # kubectl finds it on PATH as the plugin `kubectl kuberik`.
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is part of the development machine (see the README)"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    plugin = subprocess.run(
        [kubectl, "kuberik", "--help"], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.startswith("usage: kubectl kuberik")
