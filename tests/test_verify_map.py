"""`assay verify` on `Map[K, V]`: the Z3 translation (`assay/verifier/maps.py`) of each map
operation is refuted on a spec with a known bug — with a counterexample the real handler
confirms — and proves its fixed twin (tests/fixtures/verify_map); what is not translated is
unknown with the reason; and on random operation sequences the translation and Python's
`Map` agree (the handler is verified against the values Python computes)."""
from __future__ import annotations

import functools
import itertools
import tempfile
import textwrap
from pathlib import Path

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.model.load import build
from assay.model.mapping import Map
from assay.verifier import maps
from assay.verifier import types as vtypes
from assay.verifier.verify import VerifyReport, verify

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures" / "verify_map"

# name -> (the refuted obligation's kind, text on the counterexample's line)
BUGS = {
    "getitem": ("no-exception", "self.last = self.table[m.key]"),
    "set": ("ensures", "@ensures"),
    "remove": ("no-exception", "self.table = self.table.remove(m.key)"),
    "get": ("ensures", "@ensures(lambda old, self, m: self.counts[m.key] =="),
    "len": ("ensures", "@ensures"),
    "equal": ("ensures", "@ensures(lambda old, self, m: self.table == old.table)"),
    "all": ("invariant", "invariant(lambda self: all(0 <= v <= CAP"),
    "size": ("invariant", "invariant(lambda self: len(self.table) <= CAP)"),
    "fromkeys": ("ensures", "@ensures"),
    "range": ("types", 'self.data = self.data.set("x", m.items["x"] + 1)'),
    "union": ("ensures", "@ensures"),
    "for_keys": ("no-exception", "assert self.table[k] > 0"),
}


@functools.cache
def rep(path: str) -> VerifyReport:
    system, _, _ = build(str(path))
    return verify(system, timeout=10.0)


def test_every_bug_has_a_fixed_twin() -> None:
    assert sorted(p.stem[4:] for p in FIX.glob("bug_*.py")) == sorted(BUGS)
    assert sorted(p.stem[3:] for p in FIX.glob("ok_*.py")) == sorted(BUGS)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_map_bug_is_refuted_with_a_confirmed_counterexample(name: str) -> None:
    r = rep(str(FIX / f"bug_{name}.py"))
    refuted = [o for o in r.obligations if o.verdict == "refuted"]
    kind, text = BUGS[name]
    assert [o.kind for o in refuted] == [kind], [(o.kind, o.reason) for o in refuted]
    assert all(o.verdict == "proved" for o in r.obligations if o.verdict != "refuted"), \
        [(o.title, o.verdict, o.reason) for o in r.obligations]
    cex = refuted[0].counterexample
    assert cex is not None and cex.line is not None and cex.scenario is not None
    source = (FIX / f"bug_{name}.py").read_text().splitlines()
    assert text in source[cex.line - 1], (cex.line, source[cex.line - 1])
    # the counterexample's maps are real Maps, and running the handler breaks it again
    assert any(type(v) is Map for v in cex.fields.values())
    pre, post, _ = refuted[0].evaluate(cex.scenario)
    assert pre and not post


@pytest.mark.parametrize("name", sorted(BUGS))
def test_the_fixed_twin_is_proved(name: str) -> None:
    r = rep(str(FIX / f"ok_{name}.py"))
    assert [(o.target, o.kind, o.reason) for o in r.obligations if o.verdict != "proved"] == []
    assert r.verdict == "proved"


def test_what_is_not_translated_is_unknown_with_the_reason_never_proved() -> None:
    r = rep(str(FIX / "unknown_constructs.py"))
    why = {"loop": "a for loop over a frozenset whose body assigns a field",   # a Map's keys
           "keys": "m.keys(): iteration over a Map is not translated",
           "over": "the attribute .over of Map"}
    for target, text in why.items():
        obs = [o for o in r.obligations if o.target == target]
        assert obs and all(o.verdict == "unknown" and text in o.reason for o in obs), \
            [(o.title, o.verdict, o.reason) for o in obs]


def test_the_bank_on_an_external_store_is_proved_and_its_twin_refuted() -> None:
    good = rep(str(REPO / "specs" / "bank_store.py"))
    assert [(o.title, o.reason) for o in good.obligations if o.verdict != "proved"] == []
    bad = rep(str(REPO / "specs" / "bank_store_bug_self_transfer.py"))
    refuted = [o for o in bad.obligations if o.verdict == "refuted"]
    assert [(o.target, o.kind) for o in refuted] == [("transfer", "invariant")]
    cex = refuted[0].counterexample
    assert cex is not None and cex.scenario is not None
    msg = cex.scenario.message
    assert msg is not None and msg.src == msg.dst  # a transfer to oneself creates money
    pre, post, _ = refuted[0].evaluate(cex.scenario)
    assert pre and not post


# --- the translation agrees with Python's Map ----------------------------------------------------

KEYS = st.integers(0, 3)
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.integers(-2, 2)),
    st.tuples(st.just("remove"), KEYS),           # KeyError when absent
    st.tuples(st.just("getitem"), KEYS),          # KeyError when absent
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("in"), KEYS),
    st.tuples(st.just("truth"),),
    st.tuples(st.just("eq"), st.dictionaries(KEYS, st.integers(-2, 2), max_size=3))),
    max_size=7)
_N = itertools.count()


def _run(init: dict[int, int], ops: list[tuple]) -> tuple[list[str], Map, tuple[int, ...], bool]:
    """The handler's lines for `ops`, and what Python's Map computes (raised: KeyError)."""
    x, obs, lines = Map(init), [], []
    raised = False
    for op in ops:
        kind = op[0]
        if kind == "set":
            lines.append(f"x = x.set({op[1]}, {op[2]})")
        elif kind == "remove":
            lines.append(f"x = x.remove({op[1]})")
        elif kind == "getitem":
            lines.append(f"obs = obs + (x[{op[1]}],)")
        elif kind == "get":
            lines.append(f"obs = obs + (x.get({op[1]}, -9),)")
        elif kind == "in":
            lines.append(f"obs = obs + (1 if {op[1]} in x else 0,)")
        elif kind == "truth":
            lines.append("obs = obs + (1 if x else 0,)")
        else:
            lines.append(f"obs = obs + (1 if x == Map({op[1]!r}) else 0,)")
        if raised:
            continue
        try:
            if kind == "set":
                x = x.set(op[1], op[2])
            elif kind == "remove":
                x = x.remove(op[1])
            elif kind == "getitem":
                obs.append(x[op[1]])
            elif kind == "get":
                obs.append(x.get(op[1], -9))
            elif kind == "in":
                obs.append(1 if op[1] in x else 0)
            elif kind == "truth":
                obs.append(1 if x else 0)
            else:
                obs.append(1 if x == Map(op[1]) else 0)
        except KeyError:
            raised = True
    return lines, x, tuple(obs), raised


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(init=st.dictionaries(KEYS, st.integers(-2, 2), max_size=3), ops=OPS)
def test_the_translation_agrees_with_python_maps_on_random_operations(
        init: dict[int, int], ops: list[tuple]) -> None:
    lines, final, obs, raised = _run(init, ops)
    body = "\n".join(["x = self.m", "obs = ()", *lines, "self.m = x", "self.obs = obs"])
    wrong = obs[:-1] + (obs[-1] + 1,) if obs else (7,)
    spec = textwrap.dedent('''\
        from assay import Component, Map, Message, Port, System, ensures, on


        class Go(Message):
            pass


        class C(Component):
            inp = Port(many=True)
            m: Map[int, int] = Map({init!r})
            obs: tuple[int, ...] = ()

            @on(Go)
            @ensures(lambda old, self, msg: old.m != Map({init!r})
                     or self.m == Map({final!r}) and self.obs == {obs!r})
            @ensures(lambda old, self, msg: old.m != Map({init!r}) or self.obs == {wrong!r})
            def go(self, msg):
        {body}


        def system():
            s = System("agree")
            s.add("c", C)
            return s
        ''').format(init=init, final=dict(final.items()), obs=obs, wrong=wrong,
                    body=textwrap.indent(body, " " * 8))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"agree_{next(_N)}.py"
        path.write_text(spec)
        system, _, _ = build(str(path))
        r = verify(system, timeout=10.0)
    by = {(o.kind, o.location.line if o.location else None): o for o in r.obligations}
    verdicts = {k: o.verdict for k, o in by.items()}
    no_exc = [o for o in r.obligations if o.kind == "no-exception"]
    ens = sorted((o for o in r.obligations if o.kind == "ensures"),
                 key=lambda o: o.location.line)                    # type: ignore[union-attr]
    assert len(ens) == 2, verdicts
    if raised:
        # Python raises KeyError (from the initial state): verify refutes "raises no
        # exception", confirmed by the real handler
        assert [o.verdict for o in no_exc] == ["refuted"], [(o.verdict, o.reason)
                                                            for o in no_exc]
    else:
        assert [o.verdict for o in no_exc] != ["refuted"] or "KeyError" in no_exc[0].reason
        assert ens[0].verdict == "proved", ens[0].reason
        assert ens[1].verdict == "refuted", ens[1].reason


# --- the encoding, term by term -------------------------------------------------------------------

@settings(max_examples=60, deadline=None, derandomize=True)
@given(init=st.dictionaries(KEYS, st.integers(-2, 2), max_size=4), ops=OPS)
def test_the_terms_agree_with_python_maps(init: dict[int, int], ops: list[tuple]) -> None:
    ty = maps.map_ty(vtypes.INT, vtypes.INT)
    x = Map(init)
    m = vtypes.Val(ty, maps.to_z3(x, ty, {}))
    s = z3.Solver()
    for op in ops:
        kind = op[0]
        if kind == "set":
            x, m = x.set(op[1], op[2]), maps.store(m, z3.IntVal(op[1]), z3.IntVal(op[2]))
        elif kind == "remove":
            assert z3.is_true(z3.simplify(maps.has(m, z3.IntVal(op[1])))) == (op[1] in x)
            if op[1] in x:
                x, m = x.remove(op[1]), maps.delete(m, z3.IntVal(op[1]))
        elif kind in ("getitem", "get", "in"):
            assert z3.is_true(z3.simplify(maps.has(m, z3.IntVal(op[1])))) == (op[1] in x)
            if op[1] in x:
                assert z3.simplify(maps.read(m, z3.IntVal(op[1])).e).as_long() == x[op[1]]
        elif kind == "truth":
            s.push()
            s.add(maps.is_empty(m) != z3.BoolVal(not x))
            assert s.check() == z3.unsat
            s.pop()
        else:
            other = vtypes.Val(ty, maps.to_z3(Map(op[1]), ty, {}))
            s.push()
            s.add((m.e == other.e) != z3.BoolVal(x == Map(op[1])))
            assert s.check() == z3.unsat
            s.pop()
            s.push()                # `|`: the right side's items win
            s.add(maps.union(m, other, None).e != maps.to_z3(x | Map(op[1]), ty, {}))
            assert s.check() == z3.unsat
            s.pop()
    # the sum of the values: the background facts fix it to Python's
    s.add(maps.sum_facts([maps.msum(m.e)]))
    s.add(maps.msum(m.e) != sum(x.values()))
    assert s.check() == z3.unsat
    # and the final term reads back as the same Map
    s2 = z3.Solver()
    c = z3.Const("final", maps.map_sort(ty))
    s2.add(c == m.e)
    assert s2.check() == z3.sat
    reader = vtypes.ModelReader(s2.model(), set())
    assert reader.value(vtypes.Val(ty, c)) == x


def test_len_of_a_map_with_enum_or_bool_keys_is_exact() -> None:
    ty = maps.map_ty(vtypes.BOOL, vtypes.INT)
    for d in ({}, {True: 1}, {False: 2, True: 3}):
        m = vtypes.Val(ty, maps.to_z3(Map(d), ty, {}))
        assert z3.simplify(maps.length(m, None)).as_long() == len(d)


def test_a_model_with_infinitely_many_keys_is_not_read_back() -> None:
    ty = maps.map_ty(vtypes.INT, vtypes.INT)
    full = z3.K(z3.IntSort(), vtypes.some_of(maps.entry_ty(ty), z3.IntVal(0)))
    c = z3.Const("full", maps.map_sort(ty))
    s = z3.Solver()
    s.add(c == full)
    assert s.check() == z3.sat
    with pytest.raises(vtypes.Unsupported, match="infinitely many keys"):
        vtypes.ModelReader(s.model(), set()).value(vtypes.Val(ty, c))


