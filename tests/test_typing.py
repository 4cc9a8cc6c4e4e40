"""Specs are typed (PEP 561, `assay/py.typed`): mypy sees a message's and a record's fields and
constructor (`dataclass_transform`), a component's fields, and `persistent(...)`,
`one_of(...)` and the decorators as what they declare.  One shipped spec passes
`mypy --strict`, and a spec with misspelled fields and messages fails exactly where marked."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STRICT_SPEC = "specs/register.py"
MISSPELLED = "tests/fixtures/typing/misspelled.py"

# --strict for the spec, as a user's project would check it; assay's own modules are
# checked by test_quality.py under the project's settings (for an installed assay, mypy
# reports nothing in site-packages either)
CONFIG = """\
[mypy]
strict = True
[mypy-assay.*]
ignore_errors = True
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory) -> str:
    pytest.importorskip("mypy", reason="installed with the test extras")
    ini = tmp_path_factory.mktemp("mypy") / "mypy.ini"
    ini.write_text(CONFIG)
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini),
                        "--no-error-summary", STRICT_SPEC, MISSPELLED],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.stdout


def _errors(output: str, file: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in output.splitlines():
        m = re.match(rf"{re.escape(file)}:(\d+): error: (.*)", line)
        if m:
            out[int(m[1])] = out.get(int(m[1]), "") + m[2]
    return out


def test_a_shipped_spec_passes_mypy_strict(mypy_output):
    assert _errors(mypy_output, STRICT_SPEC) == {}, mypy_output


def test_misspelled_fields_and_messages_are_type_errors(mypy_output):
    marked = {i: re.split(r"#\s+error: ", line, maxsplit=1)[1].strip()
              for i, line in enumerate((REPO / MISSPELLED).read_text().splitlines(), 1)
              if re.search(r"#\s+error: ", line)}
    assert len(marked) == 6
    got = _errors(mypy_output, MISSPELLED)
    assert set(got) == set(marked), mypy_output
    for line, text in marked.items():
        assert text in got[line], (line, got[line])


def test_the_package_ships_its_py_typed_marker():
    import tomllib

    assert (REPO / "assay" / "py.typed").is_file()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["assay"]
