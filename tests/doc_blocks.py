"""What the tests of the documentation share: the fenced code blocks of a Markdown page.

README.md (`test_readme.py`) and docs/LANGUAGE.md (`test_language_reference.py`) are
executable documentation; both read their examples with `fenced_blocks`.
"""
from __future__ import annotations

import re


def fenced_blocks(text: str, lang: str) -> list[str]:
    """The bodies of the ```<lang> blocks of a Markdown text, in order (without the fences)."""
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)
