"""Release order as the ImagePolicy declares it (docs rollout.md; docs rollout.md).

image-reflector-controller orders tags by the policy's `semver`, `alphabetical` or `numerical`
rule, after `filterTags` kept the tags its `pattern` matches and replaced each by the value its
`extract` template expands to (Go's `Regexp.ExpandString`). We order the known releases the same
way, with ties ordered by discovery. Patterns are Go RE2: a construct Python's `re` would read
differently is refused (`UnsupportedFilter`) rather than guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import semver

OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")

Kind = Literal["semver", "alphabetical", "numerical", "discovery"]


def is_oci_tag(value: object) -> bool:
    """docs/spec/v1alpha1/rollout.md: the only values ever written into a Flux object."""
    return isinstance(value, str) and OCI_TAG.fullmatch(value) is not None


# --- semver ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def parse_semver(tag: str) -> semver.Version | None:
    """Semver 2.0 parse allowing a leading `v` (as fluxcd/pkg/version.ParseVersion).

    Cached: every sync orders the same few hundred known releases again (Version is immutable)."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def _prerelease_key(prerelease: str | None) -> tuple[Any, ...]:
    """Semver §11: a release ranks above its prereleases; identifiers compare left to right."""
    if not prerelease:
        return (1,)
    parts = [(0, int(i), "") if i.isdigit() else (1, 0, i) for i in prerelease.split(".")]
    return (0, tuple(parts))


def semver_key(version: semver.Version) -> tuple[Any, ...]:
    """Precedence key (build metadata ignored)."""
    return (version.major, version.minor, version.patch, _prerelease_key(version.prerelease))


# --- numbers as Go's strconv.ParseFloat reads them ------------------------------------------------

_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for the values a tag can hold; None when Go would fail.

    NaN parses in Go but orders nothing (every comparison is false): it is not orderable here.
    """
    if _GO_DECIMAL.fullmatch(text) or _GO_SPECIAL.fullmatch(text):
        return float(text)
    body = text.lstrip("+-")
    if body[:2].lower() == "0x" and "_" not in body:
        try:
            value = float.fromhex(text)
        except ValueError:
            return None
        return value
    return None


# --- filterTags ------------------------------------------------------------------------------


class UnsupportedFilter(ValueError):
    """A filterTags pattern Python cannot evaluate exactly as Go's RE2 does."""


_UNSUPPORTED_ESCAPES = {
    "p": "Unicode classes (\\p{...})",
    "P": "Unicode classes (\\P{...})",
    "Q": "quoted text (\\Q...\\E)",
    "C": "\\C",
    "x": None,  # \x{...} only; \xHH is the same in both
    "Z": "\\Z",
    "u": "\\u",
    "U": "\\U",
    "N": "\\N",
    "g": "\\g",
}


def _escape(pattern: str, i: int, in_class: bool) -> str:
    """The Python spelling of the escape at `i` (two characters)."""
    nxt = pattern[i + 1]
    if nxt == "z":
        return "\\Z"  # RE2 \z is Python's \Z (end of text)
    if nxt.isdigit() and nxt != "0" and not in_class:
        raise UnsupportedFilter("backreferences are not RE2")
    if nxt in _UNSUPPORTED_ESCAPES:
        what = _UNSUPPORTED_ESCAPES[nxt]
        if what is not None or pattern[i + 2 : i + 3] == "{":
            raise UnsupportedFilter(what or "\\x{...}")
    return pattern[i : i + 2]


def _group_open(pattern: str, i: int) -> tuple[str, int]:
    """A `(?` group opener at `i`: its Python spelling and how many characters it took."""
    rest = pattern[i + 2 :]
    if rest.startswith("P<"):
        return "(?P<", 4
    if rest.startswith("<") and not rest.startswith(("<=", "<!")):
        return "(?P<", 3  # RE2 (Go 1.22) also spells named groups (?<name>...)
    flags = re.match(r"[imsU-]*[:)]", rest)
    if flags is None:
        raise UnsupportedFilter(f"group syntax (?{rest[:2]} is not RE2")
    if "U" in flags.group(0):
        raise UnsupportedFilter("the ungreedy flag (?U)")
    return "(", 1


def _class_open(pattern: str, i: int) -> tuple[str, int]:
    """A `[` at `i`: the opener with a leading `^` and literal `]`, refusing POSIX classes."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1  # a leading ] is literal in both
    if pattern[j : j + 2] == "[:":
        raise UnsupportedFilter("POSIX classes ([[:alpha:]])")
    return pattern[i:j], j - i


def _check_quantifier(pattern: str, i: int) -> None:
    ch = pattern[i]
    if ch in "*+?}" and pattern[i + 1 : i + 2] == "+":
        raise UnsupportedFilter("possessive quantifiers are not RE2")
    if ch == "{":
        counts = re.match(r"\{([0-9]+)(?:,([0-9]*))?\}", pattern[i:])
        if counts and any(c and int(c) > 1000 for c in counts.groups()):
            raise UnsupportedFilter("repeat counts above 1000 are not RE2")


def _translate(pattern: str) -> str:
    """The Python spelling of an RE2 pattern, or UnsupportedFilter naming what differs."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(_escape(pattern, i, in_class))
            i += 2
        elif in_class:
            if ch == "[" and pattern[i + 1 : i + 2] == ":":
                raise UnsupportedFilter("POSIX classes ([[:alpha:]])")
            in_class = ch != "]"
            out.append(ch)
            i += 1
        elif ch == "[":
            text, taken = _class_open(pattern, i)
            out.append(text)
            i, in_class = i + taken, True
        elif ch == "(" and pattern[i + 1 : i + 2] == "?":
            text, taken = _group_open(pattern, i)
            out.append(text)
            i += taken
        else:
            _check_quantifier(pattern, i)
            out.append(ch)
            i += 1
    return "".join(out)


def compile_filter(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern for Python, ASCII classes as in Go; UnsupportedFilter otherwise."""
    try:
        return re.compile(_translate(pattern), re.ASCII)
    except re.error as exc:
        raise UnsupportedFilter(f"cannot compile: {exc}") from None


_TEMPLATE_NAME = re.compile(r"\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+)")


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.ExpandString: `$name`, `${name}`, `$1`, `$$`; a missing group expands to ""."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        name = _TEMPLATE_NAME.match(rest)
        if name is None:
            out.append("$")  # malformed: the $ is kept as text
            continue
        rest = rest[name.end() :]
        key = name.group(1) or name.group(2)
        out.append(_group(match, key))


def _group(match: re.Match[str], key: str) -> str:
    try:
        value = match.group(int(key)) if key.isdigit() else match.group(key)
    except IndexError:  # no such group
        return ""
    return value or ""


@dataclass(frozen=True)
class TagFilter:
    """filterTags: which tags count, and the value each is ordered by."""

    pattern: re.Pattern[str]
    extract: str

    def value(self, tag: str) -> str | None:
        match = self.pattern.search(tag)
        if match is None:
            return None
        return go_expand(self.extract, match) if self.extract else tag


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What the ImagePolicy declares: the rule, its direction and the tag filter."""

    kind: Kind | None  # None: semver when every tag parses, else discovery
    descending: bool = False
    filter: TagFilter | None = None
    error: str | None = None  # UnsupportedFilter: nothing is ordered
    #: The named ImagePolicy is gone: its rule is unknown, only an all-semver list is ordered.
    missing: bool = False


#: A Rollout without `releasesImagePolicy` (its releases come from upstream Rollouts,
#: docs/promotion.md): there is no rule to lose, so semver when every tag parses, else discovery order.
NO_POLICY = Policy(None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def policy_of(image_policy: Mapping[str, Any] | None) -> Policy:
    """The ordering rule of an ImagePolicy (image.toolkit.fluxcd.io/v1 spec.policy/filterTags)."""
    if image_policy is None:
        return Policy(None, missing=True)
    spec = _mapping(image_policy.get("spec"))
    choice = _mapping(spec.get("policy"))
    kind: Kind | None = None
    descending = False
    for name in ("semver", "alphabetical", "numerical"):
        if isinstance(choice.get(name), Mapping):
            kind = name
            order = _mapping(choice[name]).get("order")
            descending = isinstance(order, str) and order.lower() == "desc"
            break
    filter_spec = _mapping(spec.get("filterTags"))
    pattern = filter_spec.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        return Policy(kind, descending)
    extract = filter_spec.get("extract")
    try:
        compiled = compile_filter(pattern)
    except UnsupportedFilter as exc:
        return Policy(kind, descending, error=f"filterTags.pattern {pattern!r}: {exc}")
    return Policy(kind, descending, TagFilter(compiled, extract if isinstance(extract, str) else ""))


# --- the order -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ordering:
    """The known releases in release order (worst first) and the ones that cannot be ordered.

    `unmatched`: tags the filter does not match or whose value the rule cannot read (a tag that
    is not a valid OCI tag is never ordered): they are never automatic candidates.
    """

    kind: Kind
    tags: list[str]
    unmatched: frozenset[str] = frozenset()
    policy: Policy = field(default_factory=lambda: Policy(None))
    _index: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def position(self, tag: str | None) -> int | None:
        return self._index.get(tag) if tag is not None else None

    def _semver_of(self, tag: str) -> semver.Version | None:
        value: str | None = tag
        if self.policy.filter is not None:
            value = self.policy.filter.value(tag)
        return parse_semver(value) if value is not None else None

    def is_later(self, a: str | None, b: str | None) -> bool:
        """`a` is later than `b` in release order (a known release, or semver-later under semver)."""
        if a is None or b is None or a == b:
            return False
        pa, pb = self.position(a), self.position(b)
        if pa is not None and pb is not None:
            return pa > pb
        if self.kind != "semver":
            return False
        va, vb = self._semver_of(a), self._semver_of(b)
        return va is not None and vb is not None and semver_key(va) > semver_key(vb)

    def is_lower(self, a: str, b: str) -> bool:
        """`a` comes before `b`: by this order when it can place both, else by semver when both
        parse (tags of another Rollout this one does not know, docs/promotion.md); False when
        neither can tell."""
        if self.can_order(a) and self.can_order(b):
            return self.is_later(b, a)
        va, vb = parse_semver(a), parse_semver(b)
        return va is not None and vb is not None and semver_key(va) < semver_key(vb)

    def can_order(self, tag: str | None) -> bool:
        if tag is None:
            return False
        return self.position(tag) is not None or (self.kind == "semver" and self._semver_of(tag) is not None)

    def after(self, tag: str) -> list[str] | None:
        """Known releases strictly after `tag`, worst first; None when `tag` cannot be ordered."""
        index = self.position(tag)
        if index is not None:
            return self.tags[index + 1 :]
        if not self.can_order(tag):
            return None
        return [t for t in self.tags if self.is_later(t, tag)]

    def best(self, exclude: frozenset[str] | set[str] = frozenset()) -> str | None:
        for tag in reversed(self.tags):
            if tag not in exclude:
                return tag
        return None


def _compare(kind: Kind, descending: bool) -> Any:
    def compare(a: tuple[Any, int], b: tuple[Any, int]) -> int:
        (ka, ia), (kb, ib) = a, b
        if ka != kb:
            result = -1 if ka < kb else 1
            return -result if descending else result
        return -1 if ia < ib else (1 if ia > ib else 0)  # ties: by discovery

    return functools.cmp_to_key(compare)


def order(tags: Sequence[str], policy: Policy) -> Ordering:
    """The release order of `tags` (discovery order, oldest first) under `policy`."""
    if policy.error is not None:
        return Ordering("discovery", [], frozenset(tags), policy)
    values: dict[str, str] = {}
    unmatched: set[str] = set()
    for tag in tags:
        value = policy.filter.value(tag) if policy.filter is not None else tag
        if value is None or not is_oci_tag(tag):
            unmatched.add(tag)
        else:
            values[tag] = value
    kind: Kind = policy.kind or (
        "semver" if values and all(parse_semver(v) is not None for v in values.values()) else "discovery"
    )
    if kind == "discovery" and policy.missing:
        # Without the ImagePolicy its alphabetical or numerical rule is unknown: discovery order
        # could rank an older build later, so nothing is ordered until it is back.
        return Ordering("discovery", [], frozenset(tags), policy)
    keys: dict[str, Any] = {}
    for tag, value in values.items():
        key: Any = value
        if kind == "semver":
            version = parse_semver(value)
            key = semver_key(version) if version is not None else None
        elif kind == "numerical":
            number = parse_number(value)
            key = number if number is not None and number == number else None  # NaN orders nothing
        if key is None:
            unmatched.add(tag)
        else:
            keys[tag] = key
    discovery = {tag: i for i, tag in enumerate(tags)}
    if kind == "discovery":
        ordered = [t for t in tags if t in keys]
    else:
        cmp = _compare(kind, policy.descending and kind != "semver")
        ordered = sorted(keys, key=lambda t: cmp((keys[t], discovery[t])))
    return Ordering(kind, ordered, frozenset(unmatched), policy, {t: i for i, t in enumerate(ordered)})
