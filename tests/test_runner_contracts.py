"""The handler run's contracts at run time (`Runner._run`): each kind of contract a delivery
can break — what the receiving port assumes, `requires`, `ensures`, the component's
invariant — is caught by `assay run` under `--monitor enforce`, the step refused and the
violation reported with its message as before (the messages are made only for a violation,
by module-level functions, not by a closure per contract and run); and a step that chooses
after steps that did not is still explored every way it can go (the runner keeps the
chooser of a step that chose nothing for the next one)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assay.kernel import Kernel
from assay.kernel.exec import Runner
from assay.model.load import build
from assay.runtime.local import run_local

SPEC = '''
from assay import Component, Message, Port, System, action, ensures, invariant, on, requires


class Job(Message):
    n: int


class Worker(Component):
    boss = Port(where={Job: lambda m: m.n != 13})   # what the port assumes of a Job
    done: int = 0
    spent: int = 0

    invariant(lambda self: self.spent <= 5)

    @on(Job)
    @requires(lambda self, m: m.n != 7)
    @ensures(lambda old, self, m: self.done == old.done + 1 or m.n != 9)
    def work(self, m):
        if m.n != 9:
            self.done = self.done + 1
        self.spent = self.spent + (10 if m.n == 11 else 0)


class Boss(Component):
    worker = Port()
    jobs: tuple = (JOBS)
    sent: int = 0

    @action(when=lambda self: self.sent < len(self.jobs))
    def send(self):
        self.worker.send(Job(self.jobs[self.sent]))
        self.sent = self.sent + 1


def system() -> System:
    s = System("jobs", network="fifo")
    s.connect(s.add("boss", Boss).worker, s.add("worker", Worker).boss)
    return s
'''


def _run(tmp_path: Path, jobs: tuple[int, ...]):
    spec = tmp_path / "jobs.py"
    spec.write_text(SPEC.replace("(JOBS)", repr(jobs)))
    report, _ = run_local(Kernel(build(spec, None, {})[0]), duration=5.0, seed=0)
    return report


@pytest.mark.parametrize("n, kind, blame, message", [
    (13, "contract", "boss", "boss sent Job(n=13) to worker on port 'boss', which breaks what "
                             "the port assumes of Job"),
    (7, "requires", "boss", "requires of worker.work fails on Job(n=7)"),
    (9, "ensures", "worker.work", "ensures of worker.work fails on Job(n=9)"),
    (11, "invariant", "worker.work", "invariant of Worker fails in worker after work on "
                                     "Job(n=11)"),
])
def test_each_contract_a_delivery_breaks_is_caught_at_run_time_with_its_message(
        tmp_path, n, kind, blame, message):
    report = _run(tmp_path, (1, n, 2))
    assert report.ended == "quiescent"
    assert [(v.kind, v.blame, v.message) for _, v in report.violations] == \
        [(kind, blame, message)]
    # the step was refused: its message left the worker's state as it was
    assert report.final["worker"]["done"] == 2
    assert report.final["worker"]["spent"] == 0


def test_a_run_whose_contracts_hold_reports_nothing(tmp_path):
    report = _run(tmp_path, (1, 2, 3))
    assert report.ended == "quiescent" and not report.violations
    assert report.final["worker"]["done"] == 3


def test_a_contract_that_raises_is_blamed_on_its_component_with_the_contracts_name(tmp_path):
    spec = tmp_path / "jobs.py"
    spec.write_text(SPEC.replace("(JOBS)", "(1, 0)").replace(
        "m.n != 7", "10 // m.n > 0"))
    report, _ = run_local(Kernel(build(spec, None, {})[0]), duration=5.0, seed=0)
    [(_, v)] = report.violations
    assert (v.kind, v.blame) == ("exception", "worker.work")
    assert v.message == "requires of worker.work raised ZeroDivisionError: integer division " \
                        "or modulo by zero"


def test_the_handler_run_keeps_no_cell_variables():
    """A closure per contract made every run allocate a function and its cells, contracts
    holding or not; the messages are built by module-level functions instead."""
    assert Runner._run.__code__.co_cellvars == ()


CHOOSER = '''
from assay import Component, System, action


class Counter(Component):
    x: int = 0

    @action(when=lambda self: self.x < 2)
    def tick(self):
        # the first step chooses nothing, the second chooses one of two
        self.x = self.x + (1 if self.x == 0 else self.choose((10, 20)))


def system() -> System:
    s = System("counter")
    s.add("c", Counter)
    return s
'''


def test_a_step_that_chooses_after_one_that_did_not_is_explored_every_way(tmp_path):
    from assay import api

    spec = tmp_path / "counter.py"
    spec.write_text(textwrap.dedent(CHOOSER))
    result = api.check(spec)
    assert result.states == 4                  # x = 0, 1, 11, 21
    k = Kernel(build(spec, None, {})[0])
    s = k.initial_states()[0][0]
    for _ in range(3):                         # the same runner, again and again
        [(_, one, _)] = k.successors(s)[0]
        assert k.local_values(one, "c")["x"] == 1
        nxt = sorted(k.local_values(t, "c")["x"] for _, t, _ in k.successors(one)[0])
        assert nxt == [11, 21]


@pytest.mark.parametrize("where, old, new, said", [
    ("requires", "m.n != 7", "m.n != 7 or exit(4)", "requires of worker.work"),
    ("invariant", "self.spent <= 5", "self.spent <= 5 or exit(4)", "invariant of Worker"),
])
def test_a_contract_that_exits_is_a_spec_error_naming_it(tmp_path, where, old, new, said):
    from assay.errors import SpecError

    spec = tmp_path / "jobs.py"
    # Job(7) breaks the requires, Job(11) the invariant: the predicate then calls exit()
    spec.write_text(SPEC.replace("(JOBS)", "(1, 7)" if where == "requires" else "(1, 11)")
                    .replace(old, new))
    with pytest.raises(SpecError) as caught:
        run_local(Kernel(build(spec, None, {})[0]), duration=5.0, seed=0)
    assert said in str(caught.value) and "SystemExit(4)" in str(caught.value)


def test_a_contract_that_returns_no_bool_is_read_as_a_truth_value(tmp_path):
    spec = tmp_path / "jobs.py"
    spec.write_text(SPEC.replace("(JOBS)", "(1, 7)").replace("m.n != 7", "(m.n - 7)"))
    report, _ = run_local(Kernel(build(spec, None, {})[0]), duration=5.0, seed=0)
    assert [(v.kind, v.message) for _, v in report.violations] == \
        [("requires", "requires of worker.work fails on Job(n=7)")]
