"""Deployment files (issue 9 §4.6): whatever a file holds, `load_deployment` either returns a
deployment or raises a `UsageError` at the file — never another exception, which the CLI
would show as a traceback (exit 70).  The table of cases run through `assay run --deploy` is in
tests/test_runtime_tcp.py (`MALFORMED`); this is the property over many more files, with
hypothesis, in process (the CLI turns every `UsageError` into exit 2)."""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import UsageError
from assay.runtime.deploy import Deployment, load_deployment

SPEC = str(Path(__file__).resolve().parent.parent / "specs" / "two_phase_commit.py")

BASE: dict[str, Any] = {
    "spec": SPEC,
    "secret": "a-shared-secret-for-tests-only",
    "params": {"rm_count": 2},
    "nodes": {"n1": {"host": "127.0.0.1", "port": 7101, "instances": ["tm"]},
              "n2": {"host": "127.0.0.1", "port": 7102, "instances": ["rm0", "rm1"]}},
    "constraints": {"apart": [["tm", "rm0"]]},
}
# every field a deployment has, as a path into BASE
FIELDS = [("spec",), ("system",), ("secret",), ("secret_env",), ("params",),
          ("params", "rm_count"), ("nodes",), ("nodes", "n1"), ("nodes", "n1", "host"),
          ("nodes", "n1", "port"), ("nodes", "n1", "instances"), ("nodes", "n2", "port"),
          ("constraints",), ("constraints", "apart"), ("constraints", "together"),
          ("nodes", "n1", "extra"), ("extra",)]


def toml_value(v: Any) -> str:
    """`v` as an inline TOML value (tomllib reads; the standard library writes no TOML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_doc(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def with_field(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `base` with the field at `path` set to `value` (None: removed)."""
    doc = json.loads(json.dumps(base))
    at = doc
    for key in path[:-1]:
        if not isinstance(at.get(key), dict):
            at[key] = {}
        at = at[key]
    if value is None:
        at.pop(path[-1], None)
    else:
        at[path[-1]] = value
    return doc


scalars = (st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.floats()
           | st.text(max_size=20) | st.sampled_from(["tm", "rm0", "127.0.0.1", "n1"]))
values = st.none() | st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4), max_leaves=8)


def load(text: str) -> Deployment:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "deploy.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_deployment(path)
        except UsageError as e:
            assert e.location is not None and e.location.file == str(path), e.render()
            raise


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=3))
def test_any_deployment_file_loads_or_is_a_usage_error_at_the_file(changes):
    doc = BASE
    for path, value in changes:
        doc = with_field(doc, path, value)
    try:
        dep = load(toml_doc(doc))
    except UsageError:
        return
    # accepted: then every field has the type the runtime relies on
    assert isinstance(dep.spec, str) and isinstance(dep.secret, bytes)
    assert dep.system is None or isinstance(dep.system, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in dep.params.items())
    for node in dep.nodes.values():
        assert isinstance(node.host, str) and node.host
        assert type(node.port) is int and 1 <= node.port <= 65535
        assert all(isinstance(i, str) for i in node.instances)


@pytest.mark.parametrize("path,value,says", [
    (("params",), 5, "params is 5 (an integer), not a table"),
    (("nodes", "n1", "port"), True, "nodes.n1.port is true (a boolean)"),
    (("nodes", "n1", "port"), 65536, "nodes.n1.port is 65536 (an integer), not a port"),
    (("nodes", "n1", "host"), ["a"], 'nodes.n1.host is ["a"] (an array)'),
    (("nodes", "n2", "instances"), [["rm0"]], 'nodes.n2.instances is [["rm0"]] (an array)'),
    (("nodes", "n1"), "tm", 'nodes.n1 is "tm" (a string), not a table'),
    (("constraints", "apart"), "tm", 'constraints.apart is "tm" (a string)'),
])
def test_a_wrong_type_names_the_field_what_was_found_and_what_to_write(path, value, says):
    with pytest.raises(UsageError) as e:
        load(toml_doc(with_field(BASE, path, value)))
    assert says in e.value.message
    assert e.value.notes and e.value.notes[0].startswith("write ")


def test_a_file_that_is_not_utf8_is_a_usage_error(tmp_path):
    path = tmp_path / "deploy.toml"
    path.write_bytes(toml_doc(BASE).encode().replace(b"tm", b"t\xe9m"))
    with pytest.raises(UsageError, match="UTF-8"):
        load_deployment(path)


def test_the_base_deployment_loads():
    dep = load(toml_doc(BASE))
    assert dep.placement == {"tm": "n1", "rm0": "n2", "rm1": "n2"}
