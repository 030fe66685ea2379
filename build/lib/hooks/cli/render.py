"""Output: hand-formatted tables for people, stable JSON and YAML for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")


def dump(data: Any, fmt: str) -> str:
    """JSON (sorted keys, two-space indent) or YAML; the same data always prints the same."""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return " ".join(str(value).split())


def table(columns: Sequence[tuple[str, str]], rows: Sequence[dict], limit: int = 60) -> str:
    """`columns` = (header, key); cells are cut at `limit` characters (the JSON keeps everything)."""
    cells = [[_cut(cell(row.get(key)), limit) for _, key in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (h, _) in enumerate(columns)]
    lines = ["   ".join(h.ljust(w) for (h, _), w in zip(columns, widths, strict=True)).rstrip()]
    for r in cells:
        lines.append("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
