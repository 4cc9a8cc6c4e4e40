"""What the tests of the documentation share: the fenced code blocks of a Markdown page.

README.md (`test_readme.py`) and docs/LANGUAGE.md (`test_language_reference.py`) are
executable documentation; both read their examples with `fenced_blocks`, and `test_readme.py`
reads every block of the README, with its `<!-- readme-test: ... -->` marker, with
`all_blocks`.
"""
from __future__ import annotations

import re


def fenced_blocks(text: str, lang: str) -> list[str]:
    """The bodies of the ```<lang> blocks of a Markdown text, in order (without the fences)."""
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


class Block:
    """One fenced block of a Markdown page: its language, body, first line (1-based) and the
    `<!-- readme-test: ... -->` marker just above it, if any (`kind`, `reason`)."""

    def __init__(self, lang: str, body: str, line: int, marker: str | None) -> None:
        self.lang, self.body, self.line = lang, body, line
        self.kind, self.reason = "exact", ""
        if marker is not None:
            m = re.fullmatch(r"(\w+)(?:\s*\((.*)\))?", marker.strip(), flags=re.S)
            assert m, f"line {line}: a readme-test marker is `KIND (reason)`, not {marker!r}"
            self.kind, self.reason = m.group(1), (m.group(2) or "").strip()

    def __repr__(self) -> str:
        return f"line {self.line} ({self.lang or 'plain'}, {self.kind})"


MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->", flags=re.S)


def all_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the marker on the lines just above it (blank
    lines between are allowed; any other text between detaches it)."""
    blocks = []
    for m in re.finditer(r"^```([\w-]*)\n(.*?)^```\s*$", text, flags=re.S | re.M):
        before = text[:m.start()].rstrip()
        marker = None
        if before.endswith("-->"):
            found = list(MARKER.finditer(before))
            if found and found[-1].end() == len(before):
                marker = found[-1].group(1)
        blocks.append(Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, marker))
    return blocks
