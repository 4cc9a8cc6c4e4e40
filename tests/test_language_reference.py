"""docs/LANGUAGE.md is executable documentation: every example spec checks as it says.

A block that opens with `# spec: NAME.py  [check: OPTIONS]  expect: VERDICT [TEXT]` is a
complete spec: it is written to a file and `assay check FILE --json OPTIONS` runs on it (in
this process, through the command's own code), and the verdict must be the one declared —
`ok`, `violation` (the violation's message contains TEXT) or `error` (a spec error, exit 2,
whose message contains TEXT).  A block that opens with `# module: NAME.py` is a module the
specs import, written beside them.  Any other block must compile.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_blocks import fenced_blocks

import assay
from assay.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "LANGUAGE.md").read_text()
BLOCKS = fenced_blocks(PAGE, "python")

MARKER = re.compile(r"# spec: (?P<file>\S+\.py)(?:\s+check: (?P<options>.*?))?"
                    r"\s+expect: (?P<verdict>ok|violation|error)(?:\s+(?P<text>.+?))?\s*$")


@dataclass(frozen=True)
class Example:
    file: str
    options: tuple[str, ...]
    verdict: str
    text: str | None
    source: str


def _examples() -> list[Example]:
    out = []
    for block in BLOCKS:
        first = block.split("\n", 1)[0]
        if not first.startswith("# spec:"):
            continue
        m = MARKER.fullmatch(first)
        assert m is not None, f"a spec block's marker does not parse: {first!r}"
        out.append(Example(m["file"], tuple(shlex.split(m["options"] or "")), m["verdict"],
                           m["text"], block))
    return out


EXAMPLES = _examples()
MODULES = {b.split("\n", 1)[0].removeprefix("# module: ").strip(): b
           for b in BLOCKS if b.startswith("# module: ")}
FRAGMENTS = [b for b in BLOCKS if not b.startswith(("# spec:", "# module:"))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example, with the modules they import beside them."""
    d = tmp_path_factory.mktemp("language")
    for name, source in MODULES.items():
        (d / name).write_text(source)
    return d


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.file for e in EXAMPLES])
def test_example_spec_checks_as_its_marker_says(example: Example, folder: Path):
    spec = folder / example.file
    spec.write_text(example.source)
    run = CliRunner().invoke(main, ["check", str(spec), "--json", "--quiet", *example.options],
                             catch_exceptions=False)
    shown = f"{example.file}: exit {run.exit_code}\n{run.stdout}\n{run.stderr}"
    if example.verdict == "error":
        assert run.exit_code == 2, shown
        assert example.text and example.text in run.stderr, shown
        return
    doc = json.loads(run.stdout)
    assert doc["verdict"] == example.verdict, shown
    if example.verdict == "violation":
        assert example.text and example.text in doc["violation"]["message"], shown
    else:
        assert run.exit_code == 0 and doc["reason"] == "exhausted", shown


@pytest.mark.parametrize("n", range(len(FRAGMENTS)))
def test_fragment_compiles(n: int):
    compile(FRAGMENTS[n], f"LANGUAGE.md fragment {n}", "exec")


def test_examples_have_distinct_files_and_cover_every_verdict():
    files = [e.file for e in EXAMPLES] + list(MODULES)
    assert len(files) == len(set(files))
    assert {e.verdict for e in EXAMPLES} == {"ok", "violation", "error"}


def test_every_public_name_is_documented_in_a_section():
    body = PAGE.split("\n## ", 1)[1]                 # past the introduction's list of names
    for name in assay.__all__:
        assert re.search(rf"`@?{name}\b(?!_)", body), name


def test_every_shipped_spec_the_page_names_exists():
    index = PAGE.split("## Which shipped spec uses what", 1)[1]
    cells = [row.split("|")[2] for row in index.splitlines() if row.startswith("| `")]
    named = set(re.findall(r"`specs/([\w/]+\.py)`", PAGE)) | {     # a spec in a folder too
        f for cell in cells for f in re.findall(r"[\w/]+\.py", cell)}
    assert len(named) > 15
    assert sorted(f for f in named if not (ROOT / "specs" / f).is_file()) == []


def test_every_example_the_index_names_is_on_the_page():
    index = PAGE.split("## Which shipped spec uses what", 1)[1]
    named = set(re.findall(r"`(\w+\.py)` here", index))
    assert named and named <= {e.file for e in EXAMPLES}, named - {e.file for e in EXAMPLES}


def test_every_test_and_fixture_the_page_names_exists():
    named = set(re.findall(r"`(tests/[\w/.]+)`", PAGE))
    assert named
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text."""
    # fences at the start of a line only: "` ```mermaid `" inside a sentence is no block
    body = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    heads = re.findall(r"^#+ (.+)$", body, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_every_link_to_a_section_finds_it():
    readme = (ROOT / "README.md").read_text()
    for target, anchor in re.findall(r"\]\(((?:\.\./README\.md)?)#([^)]+)\)", PAGE):
        assert anchor in _anchors(readme if target else PAGE), f"{target}#{anchor}"
