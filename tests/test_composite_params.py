"""Parameters of composites from the command line: `-p a.size=2` sets the parameter `size` of
the function that builds composite `a` (nested: `outer.a.size`), over the keywords the spec
passes it, in every engine and in a deployment's [params]; a name that is no composite or no
parameter of it is a usage error that lists the right ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import assay
from assay.cli import main as cli
from assay.errors import UsageError
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build, load_module
from assay.runtime.deploy import load_deployment

ROOT = Path(__file__).resolve().parent.parent
TWO = ROOT / "tests" / "fixtures" / "composite_params" / "two_pools.py"
POOL = ROOT / "specs" / "elastic_pool.py"


def cli_run(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "300"})
    if r.exit_code not in (0, 1, 2):
        raise AssertionError(r.output) from r.exception
    return r.exit_code, r.output


def alone(**params: int) -> int:
    return assay.check(load_module(POOL).system(**params)).states


def test_check_takes_a_composites_parameter_and_explores_exactly_that_system():
    # the two composites are independent: the states are the product of each one's alone
    base = assay.check(TWO, jobs="2")
    assert base.verdict == "ok" and base.states == alone(jobs=2, size=1) ** 2 == 76 ** 2
    r = assay.check(TWO, jobs="2", **{"a.size": "2"})
    assert r.verdict == "ok"
    assert r.states == alone(jobs=2, size=2) * alone(jobs=2, size=1) == 248 * 76
    # the spec's own keyword (jobs=jobs) is overridden too, beside a top-level parameter
    r = assay.check(TWO, jobs="2", **{"b.jobs": "1"})
    assert r.states == alone(jobs=2, size=1) * alone(jobs=1, size=1) == 76 * 13
    # nested composites: the path of names
    r = assay.check(TWO, system="nested", jobs="2", **{"outer.a.size": "2"})
    assert r.states == 248 * 76


def test_the_cli_header_the_json_and_a_trace_carry_the_parameter_and_replay_it(tmp_path):
    code, out = cli_run("check", TWO, "-p", "bug=true", "-p", "a.size=2", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["params"] == {"jobs": 1, "bug": True, "a.size": 2}
    assert doc["violation"]["name"] == "a.no_job_lost"
    r = assay.check(TWO, bug="true", **{"a.size": "2"})
    path = tmp_path / "bug.json"
    r.trace.write(path)
    assert json.loads(path.read_text())["params"]["a.size"] == 2
    done = replay_trace(Trace.read(path), path)
    assert done.violation is not None and done.violation.name == "a.no_job_lost"
    # the slots of a's pool are the ones size=2 declares
    system, _, _ = build(TWO, None, {"a.size": "2"})
    assert [p.slots for p in system.pools] == [("a.worker0", "a.worker1"), ("b.worker0",)]
    code, out = cli_run("check", TWO, "-p", "a.size=2")
    assert code == 0 and ":: system(jobs=1, bug=False, a.size=2)" in out


def test_simulate_and_run_take_it_too():
    code, out = cli_run("simulate", TWO, "-p", "a.jobs=3", "--runs", "5", "--json")
    assert code == 0, out
    code, out = cli_run("run", TWO, "-p", "a.jobs=3", "--json")
    assert code == 0, out
    final = json.loads(out)["final"]
    assert final["a.client"]["jobs"] == 3 and final["b.client"]["jobs"] == 1


@pytest.mark.parametrize("param, says, note", [
    ("c.size=2", "--param c.size: system 'system' has no composite 'c'", "composites: a, b"),
    ("a.siz=2", "--param a.siz: composite 'a' (system) has no parameter 'siz'",
     "its parameters: jobs, size"),
    ("a.size=x", "--param a.size=x: expected an int", ""),
    ("a.worker0.x=1", "has no composite 'a.worker0'", "composites: a, b"),
])
def test_a_wrong_name_or_value_is_a_usage_error_naming_the_right_ones(param, says, note):
    code, out = cli_run("check", TWO, "-p", param)
    assert code == 2 and says in out and note in out and "Traceback" not in out
    assert "two_pools.py:" in out


def test_a_composite_built_before_it_is_added_takes_no_parameters():
    with pytest.raises(UsageError, match="composite 'a' is a system built before it is "
                                         "added, so it takes no parameters"):
        build(TWO, "prebuilt", {"a.size": "2"})


def test_a_deployment_gives_them_as_quoted_dotted_keys(tmp_path):
    # (a table under [params] stays an error at the deployment file: test_runtime_tcp)
    for params in ('[params]\n"a.size" = 2\n',):
        dep = tmp_path / "d.toml"
        dep.write_text(f'spec = "{TWO}"\nsecret = "a-shared-secret-for-tests-only"\n'
                       f'{params}'
                       '[nodes.one]\nport = 7001\ninstances = ["a", "b"]\n')
        d = load_deployment(dep)
        assert d.params == {"a.size": "2"}
        system, _, typed = build(d.spec, d.system, d.params)
        assert typed["a.size"] == 2 and "a.worker1" in system.instances
