"""The documentation in the repository: reference pages cover the CRDs, links resolve, and code
comments cite docs/ pages, never files outside the repository."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "spec" / "v1alpha1"
PAGE_OF_KIND = {
    "Rollout": "rollout.md",
    "RolloutGate": "rolloutgate.md",
    "HealthCheck": "healthcheck.md",
    "RolloutSchedule": "rolloutschedule.md",
    "ClusterRolloutSchedule": "rolloutschedule.md",
}
#: A citation of the specification or design notes that lived outside the repository
#: ("SPEC §3.7", "SPEC order", "DESIGN.md", the shared folder beside the checkout); a variable
#: named SPEC is not one.
OUTSIDE_CITATION = re.compile(
    r"\bSPEC\b(?=\s*(§|order|item|section|clause|'s|\.md))|\bthe SPEC\b"
    r"|DESIGN\.md|STYLE\.md|\.\./shared|\bshared/(schemas|SPEC|DESIGN|STYLE)"
)


def crds() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]


def _is_label_selector(schema: Mapping[str, Any]) -> bool:
    return set(schema.get("properties") or {}) <= {"matchLabels", "matchExpressions"} and bool(
        schema.get("properties")
    )


def _is_condition(schema: Mapping[str, Any]) -> bool:
    return {"type", "status", "reason", "lastTransitionTime"} <= set(schema.get("properties") or {})


def field_names(schema: Mapping[str, Any], prefix: str) -> Iterator[str]:
    """Every field path under a schema; standard label selectors and conditions are not opened."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        yield path
        inner = sub.get("items", {}) if sub.get("type") == "array" else sub
        if not (_is_label_selector(inner) or _is_condition(inner)):
            yield from field_names(inner, path)


def _mentioned(text: str, name: str) -> bool:
    return re.search(r"`[^`\n]*\b" + re.escape(name) + r"\b[^`\n]*`", text) is not None


@pytest.mark.parametrize("crd", crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_reference_page_names_every_field_of_the_crd(crd: dict) -> None:
    kind = crd["spec"]["names"]["kind"]
    text = (REFERENCE / PAGE_OF_KIND[kind]).read_text()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    missing = [
        path
        for part in ("spec", "status")
        for path in field_names(schema.get(part, {}), part)
        if not _mentioned(text, path.rsplit(".", 1)[-1])
    ]
    assert missing == [], f"{PAGE_OF_KIND[kind]} does not describe {missing}"


def test_every_kind_has_a_reference_page_with_example_spec_and_status() -> None:
    for kind, page in PAGE_OF_KIND.items():
        text = (REFERENCE / page).read_text()
        assert f"kind: {kind}" in text, (page, kind)  # an example of the kind
        headings = set(re.findall(r"^## (.+)$", text, re.M))
        assert {"Example"} <= headings or any("Example" in h for h in headings), page
        assert any(h.lower().startswith("spec") for h in headings), (page, headings)
        assert any("status" in h.lower() for h in headings), (page, headings)


def markdown_files() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "CHANGELOG.md",
        *sorted((REPO / "docs").rglob("*.md")),
    ]


def test_relative_links_resolve() -> None:
    dangling = []
    for page in markdown_files():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists():
                dangling.append(f"{page.relative_to(REPO)} -> {target}")
    assert dangling == []


def test_readme_is_short_and_links_the_docs() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for page in (
        "docs/spec/v1alpha1/rollout.md",
        "docs/design.md",
        "docs/development.md",
        "docs/operations.md",
    ):
        assert f"({page}" in text, page
    assert "make run" in text and "make test" in text


def test_code_comments_cite_no_file_outside_the_repository() -> None:
    offenders = []
    for path in sorted(
        [*(REPO / "hooks").rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "bench").rglob("*.py")]
    ):
        relative = path.relative_to(REPO).as_posix()
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OUTSIDE_CITATION.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
