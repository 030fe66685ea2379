"""Print the CHANGELOG.md section of one version (the GitHub release notes).

python hack/changelog-section.py 0.2.0
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


def section(text: str, version: str) -> str:
    """The lines under `## [<version>]` (or `## <version>`) up to the next `## ` heading."""
    heading = re.compile(rf"^## \[?v?{re.escape(version)}\]?(\s|$)")
    lines, found = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            if found:
                break
            found = bool(heading.match(line))
            continue
        if found:
            lines.append(line)
    if not found:
        raise SystemExit(f"CHANGELOG.md has no section for {version}")
    return "\n".join(lines).strip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(section(CHANGELOG.read_text(), sys.argv[1]))
