"""Rebuild README.md: the hand-written head, then each part's section from docs/readme/, in reading order.

Run it (`make readme`) after editing a section; the benchmarks call it after regenerating their table.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
README = HERE.parent.parent / "README.md"
MARKER = "<!-- sections assembled from docs/readme/*.md -->"
ORDER = ["contents", "labextension", "connecting", "journal", "engine", "emulator", "performance"]


def demote(text: str) -> str:
    """Every section starts at `##`: a draft written with a `#` title moves down one level."""
    if not re.search(r"^# ", text, flags=re.M):
        return text
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#+ ", line) else line)
    return "\n".join(out) + "\n"


def main() -> None:
    head = README.read_text().split(MARKER)[0].rstrip() + "\n\n" + MARKER + "\n"
    parts = [demote((HERE / f"{name}.md").read_text()).strip() + "\n" for name in ORDER]
    README.write_text(head + "\n" + "\n".join(parts))


if __name__ == "__main__":
    main()
