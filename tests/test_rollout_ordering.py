"""Release order as image-reflector-controller computes it (docs rollout.md): one row per rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hooks.rollout.ordering import Policy, compile_filter, go_expand, order, parse_number, policy_of


def image_policy(policy: dict, pattern: str | None = None, extract: str = "") -> dict:
    spec: dict = {"imageRepositoryRef": {"name": "app"}, "policy": policy}
    if pattern is not None:
        spec["filterTags"] = {"pattern": pattern, "extract": extract}
    return {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy", "spec": spec}


@dataclass(frozen=True)
class Row:
    name: str
    policy: dict
    tags: list[str]  # discovery order, oldest first
    want: list[str]  # release order, worst first
    unmatched: frozenset[str] = frozenset()
    pattern: str | None = None
    extract: str = ""


ROWS = [
    Row(
        "semver: precedence per semver 2.0, prereleases before their release",
        {"semver": {"range": ">=0.0.0-0"}},
        ["1.0.0", "1.0.0-rc.10", "1.0.0-rc.2", "0.9.0"],
        ["0.9.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"],
    ),
    Row(
        "semver: a leading v is allowed", {"semver": {"range": "*"}}, ["v2.0.0", "1.5.0"], ["1.5.0", "v2.0.0"]
    ),
    Row(
        "semver policy: tags that do not parse are never ordered",
        {"semver": {"range": "*"}},
        ["1.0.0", "latest"],
        ["1.0.0"],
        frozenset({"latest"}),
    ),
    Row(
        "no rule that says otherwise and every tag parses: semver",
        {},
        ["2.0.0", "10.0.0"],
        ["2.0.0", "10.0.0"],
    ),
    Row(
        "no rule and some tag does not parse: discovery order",
        {},
        ["main-b", "main-a", "1.0.0"],
        ["main-b", "main-a", "1.0.0"],
    ),
    Row(
        "alphabetical asc: the last in the order is the best",
        {"alphabetical": {}},
        ["b", "c", "a"],
        ["a", "b", "c"],
    ),
    Row(
        "alphabetical desc: the first in the order is the best",
        {"alphabetical": {"order": "desc"}},
        ["b", "c", "a"],
        ["c", "b", "a"],
    ),
    Row(
        "alphabetical compares bytes, not numbers",
        {"alphabetical": {"order": "asc"}},
        ["9", "10"],
        ["10", "9"],
    ),
    Row(
        "numerical asc compares numbers",
        {"numerical": {"order": "asc"}},
        ["9", "10", "1.5"],
        ["1.5", "9", "10"],
    ),
    Row(
        "numerical desc: the smallest is the best", {"numerical": {"order": "desc"}}, ["9", "10"], ["10", "9"]
    ),
    Row(
        "numerical: a value Go's ParseFloat rejects is never ordered",
        {"numerical": {}},
        ["1", "1_000", "x"],
        ["1"],
        frozenset({"1_000", "x"}),
    ),
    Row(
        "filterTags extract with a named group, ordered numerically",
        {"numerical": {}},
        ["main-abc-20", "main-def-3", "feature-1"],
        ["main-def-3", "main-abc-20"],
        frozenset({"feature-1"}),
        r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
        "$ts",
    ),
    Row(
        "filterTags under semver orders the extracted values",
        {"semver": {"range": "*"}},
        ["app-1.10.0", "app-1.9.0", "web-9.0.0"],
        ["app-1.9.0", "app-1.10.0"],
        frozenset({"web-9.0.0"}),
        r"^app-(?P<v>.*)$",
        "${v}",
    ),
    Row(
        "filterTags without extract orders the tag itself",
        {"alphabetical": {}},
        ["rc-b", "x", "rc-a"],
        ["rc-a", "rc-b"],
        frozenset({"x"}),
        r"^rc-",
    ),
    Row(
        "equal order values are ordered by discovery",
        {"numerical": {}},
        ["b2-x", "b1-y", "b2-z"],
        ["b1-y", "b2-x", "b2-z"],
        frozenset(),
        r"^b(?P<n>[0-9]+)-",
        "$n",
    ),
    Row(
        "a value that is not an OCI tag is never ordered",
        {"alphabetical": {}},
        ["a", "b+c"],
        ["a"],
        frozenset({"b+c"}),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_release_order(row: Row) -> None:
    got = order(row.tags, policy_of(image_policy(row.policy, row.pattern, row.extract)))
    assert got.tags == row.want
    assert got.unmatched == row.unmatched


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("Unicode classes are RE2-only", r"^\p{L}+$"),
        ("POSIX classes differ", r"^[[:digit:]]+$"),
        ("the ungreedy flag is RE2-only", r"(?U)a+"),
        ("lookahead is not RE2", r"^(?=a)a"),
        ("backreferences are not RE2", r"(a)\1"),
        ("quoted text is RE2-only", r"\Qa.b\E"),
        ("repeat counts above 1000 are not RE2", r"a{1001}"),
        ("a pattern Python cannot compile", r"(unclosed"),
    ],
)
def test_a_pattern_python_cannot_evaluate_identically_is_unsupported(name: str, pattern: str) -> None:
    policy = policy_of(image_policy({"alphabetical": {}}, pattern))
    assert policy.error is not None, name
    assert order(["a", "b"], policy).tags == []


@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        (r"^v\d+$", "v1", True),
        (r"^v\d+$", "v\u0661", False),  # \d is ASCII in RE2 (ARABIC-INDIC DIGIT ONE)
        (r"(?<ts>[0-9]+)$", "a-12", True),  # RE2 (Go 1.22) named group syntax
        (r"^a\z", "a", True),
    ],
)
def test_re2_spellings_are_read_as_go_reads_them(pattern: str, tag: str, matches: bool) -> None:
    assert (compile_filter(pattern).search(tag) is not None) is matches


@pytest.mark.parametrize(
    ("template", "want"),
    [
        ("$ts", "42"),
        ("${ts}-x", "42-x"),
        ("$1", "42"),
        ("$$ts", "$ts"),
        ("$tsx", ""),  # Go takes the longest name: $tsx, which does not exist
        ("$", "$"),
        ("v$missing", "v"),
    ],
)
def test_extract_expands_like_go_regexp_expand(template: str, want: str) -> None:
    match = compile_filter(r"b-(?P<ts>[0-9]+)").search("b-42")
    assert match is not None
    assert go_expand(template, match) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        ("inf", float("inf")),
        ("0x10", 16.0),
        ("1_000", None),
        (" 1", None),
        ("abc", None),
        ("1.2.3", None),
    ],
)
def test_numbers_parse_as_go_strconv_parse_float(text: str, want: float | None) -> None:
    assert parse_number(text) == want


def test_is_later_uses_release_order_and_semver_for_unknown_tags() -> None:
    ordering = order(["1.0.0", "1.1.0"], Policy("semver"))
    assert ordering.is_later("1.1.0", "1.0.0")
    assert not ordering.is_later("1.0.0", "1.1.0")
    assert ordering.is_later("1.2.0", "1.1.0")  # not known, semver-later
    assert not ordering.is_later("hotfix", "1.0.0")
    alphabetical = order(["a", "b"], Policy("alphabetical"))
    assert not alphabetical.is_later("c", "b")  # unknown tags cannot be ordered outside semver
