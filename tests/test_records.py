"""Records and maps as state: `Record` (frozen, typed, `replace`) and `Map[K, V]` (immutable,
functional update), in every engine — values and types, canonical and JSON forms, `check`
(states by value), `simulate`, traces and `replay`, the wire, the SQLite store, `verify` —
and changes made in place (`self.flag[i] = True`) as spec errors with the fix."""
from __future__ import annotations

import copy
import enum
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Map, Message, Peer, Range, Record, System, action
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Faults, Kernel
from assay.kernel.events import Envelope
from assay.kernel.trace import RECORDED, find_initial
from assay.model.component import component_info
from assay.model.load import build
from assay.model.types import ImmutableError, UnsupportedType, canonical, parse_type, to_json
from assay.runtime.store import Store
from assay.runtime.wire import (
    WireError,
    decode_payload,
    encode_payload,
    envelope_from_wire,
    envelope_to_wire,
)
from assay.simulator import Options, campaign

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
FIX = ROOT / "tests" / "fixtures"
PAXOS = str(SPECS / "paxos.py")
PAXOS_BUG = str(SPECS / "paxos_bug_own_value.py")


class Color(Record):
    r: int
    g: int = 0


class Entry(Record):
    value: Annotated[int, Range(0, 9)]
    tags: frozenset[str] = frozenset()
    color: Color | None = None


def assay_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


# --- records as values ----------------------------------------------------------------------------

def test_a_record_is_built_by_position_or_name_with_defaults():
    assert Color(1) == Color(r=1) == Color(1, 0) == Color(g=0, r=1)
    assert Color(1).g == 0 and Color(1, 2).values() == (1, 2)
    assert repr(Entry(3)) == "Entry(value=3, tags=frozenset(), color=None)"


def test_replace_returns_a_changed_copy_and_leaves_the_record_alone():
    c = Color(1, 2)
    d = c.replace(g=5)
    assert (c, d) == (Color(1, 2), Color(1, 5))
    assert c.replace() == c and type(c.replace()) is Color
    with pytest.raises(TypeError, match="no field 'b'"):
        c.replace(b=1)


def test_a_record_cannot_be_changed_in_place():
    c = Color(1)
    for change in (lambda: setattr(c, "r", 2), lambda: setattr(c, "new", 1),
                   lambda: delattr(c, "r")):
        with pytest.raises(ImmutableError, match="immutable"):
            change()
    with pytest.raises(AttributeError):     # an ImmutableError is an AttributeError too
        c.r = 3
    assert c == Color(1)


def test_records_are_equal_and_hash_equal_by_type_and_value():
    assert Color(1, 2) == Color(1, 2) and hash(Color(1, 2)) == hash(Color(1, 2))
    assert Color(1, 2) != Color(2, 1)

    class Other(Record):
        r: int
        g: int = 0

    assert Other(1, 2) != Color(1, 2)
    assert len({Color(1), Color(1), Color(2)}) == 2
    assert Map({Color(1): "a"})[Color(1)] == "a"           # a record is a map key


def test_a_record_matches_a_class_pattern_by_position():
    match Color(4, 5):
        case Color(r, g):
            assert (r, g) == (4, 5)


def test_a_message_is_a_record_with_a_sender():
    class Ping(Message):
        n: int

    m = Ping(1).with_sender("a")
    assert isinstance(m, Record) and m.sender == "a" and m == Ping(1)
    assert m.replace(n=2) == Ping(2) and m.replace(n=2).sender is None
    # a record is not a message: it cannot be sent
    assert not isinstance(Color(1), Message)


# --- maps as values -------------------------------------------------------------------------------

def test_a_map_is_built_from_a_dict_pairs_or_a_function_over_a_domain():
    m = Map({2: "b", 1: "a"})
    assert Map([(1, "a"), (2, "b")]) == m == Map(m) == Map.over([1, 2], lambda k: "ab"[k - 1])
    assert Map.fromkeys(range(3), False) == Map({0: False, 1: False, 2: False})
    assert Map() == Map({}) and not Map() and len(m) == 2


def test_a_map_reads_like_a_dict():
    m = Map({"x": 1, "y": 2})
    assert m["x"] == 1 and m.get("z") is None and m.get("z", 7) == 7
    assert "x" in m and "z" not in m
    assert list(m) == ["x", "y"] and m.keys() == ("x", "y") and m.values() == (1, 2)
    assert m.items() == (("x", 1), ("y", 2))
    with pytest.raises(KeyError):
        m["z"]
    assert isinstance(m, typing.Mapping)


def test_set_and_remove_return_new_maps():
    m = Map({1: "a"})
    assert m.set(2, "b") == Map({1: "a", 2: "b"}) and m == Map({1: "a"})
    assert m.set(1, "z") == Map({1: "z"})
    assert m.set(1, "a") is m                     # nothing changes: the same map
    assert m.remove(1) == Map()
    with pytest.raises(KeyError):
        m.remove(5)
    assert m | {2: "b"} == Map({1: "a", 2: "b"}) and m | Map({1: "b"}) == Map({1: "b"})


def test_a_map_cannot_be_changed_in_place():
    m = Map({1: 2})
    with pytest.raises(ImmutableError, match="immutable"):
        m[1] = 3
    with pytest.raises(ImmutableError):
        del m[1]
    with pytest.raises(TypeError):                # an ImmutableError is a TypeError too
        m[2] = 3
    with pytest.raises(ImmutableError):
        m.extra = 1
    assert m == Map({1: 2})


def test_a_map_iterates_and_prints_in_the_canonical_order_of_its_keys():
    m = Map({10: "c", 2: "b", 1: "a"})
    assert list(m) == [1, 2, 10]                 # non-negative ints: ascending
    assert repr(m) == "Map({1: 'a', 2: 'b', 10: 'c'})"
    names = Map.fromkeys([Peer("n10"), Peer("n2"), Peer("n1")], 0)
    assert [str(p) for p in names] == ["n1", "n2", "n10"]   # by length, then alphabetically


# --- types: annotations, conformance, descriptions -----------------------------------------------

def test_map_annotations_parse_in_either_spelling():
    t = parse_type(Map[Peer, Entry])
    assert t.describe() == "Map[Peer, Entry]"
    assert parse_type(typing.Mapping[int, bool]).describe() == "Map[int, bool]"
    assert parse_type(Map[str, tuple[int, ...]] | None).describe() == \
        "Optional[Map[str, tuple[int, ...]]]"


@pytest.mark.parametrize("ann, says", [
    (Map, "Map needs its key and value types"),
    (typing.Mapping, "Map needs its key and value types"),
    (dict[str, int], "use Map[K, V]"),
    (Map[frozenset, int], "does not say what it holds"),
    (Map[int, list], "mutable"),
])
def test_a_map_annotation_that_does_not_say_what_it_holds_is_refused(ann, says):
    with pytest.raises(UnsupportedType, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_type(ann)


def test_conformance_checks_every_key_and_value_and_every_record_field():
    t = parse_type(Map[Peer, Entry])
    ok = Map({Peer("a"): Entry(1), Peer("b"): Entry(9, frozenset({"x"}), Color(1))})
    assert t.conforms(ok) and t.conforms(Map())
    assert not t.conforms({Peer("a"): Entry(1)})           # a dict is not a Map
    assert not t.conforms(Map({1: Entry(1)}))              # a key of the wrong type
    assert not t.conforms(Map({Peer("a"): 1}))             # a value of the wrong type
    assert not t.conforms(Map({Peer("a"): Entry(10)}))     # a field out of its Range
    assert not t.conforms(Map({Peer("a"): Entry(1, color=Color("1"))}))   # nested
    assert not t.conforms(Map({Peer("a"): Entry(1, tags=frozenset({1}))}))
    assert "field 'r' of Color is True, not int" in Color(True).bad_field()
    # records in sets, tuples and Optionals, and maps as map values
    assert parse_type(frozenset[Color]).conforms(frozenset({Color(1), Color(2)}))
    assert not parse_type(frozenset[Color]).conforms(frozenset({Color("x")}))
    assert parse_type(tuple[Color, Color | None]).conforms((Color(1), None))
    nested = parse_type(Map[Color, Map[int, bool]])
    assert nested.conforms(Map({Color(1): Map({1: True})}))
    assert not nested.conforms(Map({Color(1): Map({1: 1})}))
    assert nested.mismatch(Map({Color(1): Map({1: 1})})) == \
        "at key Color(r=1, g=0): at key 1: 1 is not bool"


# --- canonical and JSON forms ---------------------------------------------------------------------

small_maps = st.dictionaries(st.integers(-20, 20), st.text(max_size=3), max_size=8)
MAP_T = parse_type(Map[int, str])


@given(small_maps, st.randoms(use_true_random=False))
def test_a_map_is_the_same_value_whatever_the_order_it_was_built_in(d, rnd):
    items = list(d.items())
    shuffled = items[:]
    rnd.shuffle(shuffled)
    a, b = Map(items), Map()
    for k, v in shuffled:
        b = b.set(k, v)
    assert a == b and hash(a) == hash(b)
    assert canonical(a) == canonical(b) and to_json(a) == to_json(b) and repr(a) == repr(b)
    assert list(a) == list(b) == sorted(d, key=canonical)


@given(small_maps, st.integers(-20, 20), st.text(max_size=3))
def test_set_and_remove_obey_the_laws_of_a_function(d, k, v):
    m = Map(d)
    assert m.set(k, v)[k] == v and k in m.set(k, v)
    assert len(m.set(k, v)) == len(m) + (k not in m)
    assert m.set(k, v).set(k, v) == m.set(k, v)
    assert all(m.set(k, v)[j] == m[j] for j in m if j != k)
    if k in m:
        assert m.remove(k).set(k, m[k]) == m and k not in m.remove(k)
    else:
        assert m.set(k, v).remove(k) == m
    assert dict(m.items()) == d


@given(small_maps)
def test_a_map_round_trips_through_json(d):
    m = Map(d)
    back = MAP_T.from_json(json.loads(json.dumps(to_json(m))))
    assert back == m and type(back) is Map and canonical(back) == canonical(m)
    assert MAP_T.from_json(list(reversed(to_json(m)))) == m   # pairs in any order


ENTRY_MAP = parse_type(Map[str, Entry | None])
entries = st.builds(Entry, st.integers(0, 9), st.frozensets(st.text(max_size=2), max_size=3),
                    st.one_of(st.none(), st.builds(Color, st.integers(), st.integers())))


@given(st.dictionaries(st.text(max_size=4), st.one_of(st.none(), entries), max_size=5))
def test_maps_of_records_round_trip_through_json(d):
    m = Map(d)
    assert ENTRY_MAP.conforms(m)
    back = ENTRY_MAP.from_json(json.loads(json.dumps(to_json(m))))
    assert back == m and canonical(back) == canonical(m)
    assert all(type(e) is Entry for e in back.values() if e is not None)


@pytest.mark.parametrize("j, says", [
    ({"a": 1}, "list of \\[key, value\\] pairs"),
    ([["a"]], "a \\[key, value\\] pair"),
    ([["a", None, 3]], "a \\[key, value\\] pair"),
    ([["a", None], ["a", None]], "'a' appears twice"),
    ([[1, None]], "expected a str"),
    ([["a", {"type": "Entry", "fields": {"value": "1"}}]], "expected an int"),
    ([["a", {"type": "Color", "fields": {"r": 1}}]], "unknown record type 'Color'"),
    ([["a", {"type": "Entry", "fields": {"value": 1, "zz": 1}}]], "has no field 'zz'"),
])
def test_decoding_a_map_is_strict(j, says):
    with pytest.raises(ValueError, match=says):
        ENTRY_MAP.from_json(j)


def test_records_and_messages_have_distinct_canonical_forms():
    class Point(Record):
        x: int

    class PointMsg(Message):
        x: int

    assert canonical(Point(1))[:1] == b"r" and canonical(PointMsg(1))[:1] == b"m"
    assert canonical(Map({1: 2}))[:1] == b"d" and canonical(Map()) != canonical(frozenset())


_CANON = """
import json, sys
from assay import Map, Peer, Record
class Vote(Record):
    bal: int
    who: frozenset[str]
m = Map()
for i in range(40):
    m = m.set(Peer(f"node-{i * 7 % 40}"), Vote(i, frozenset({f"x{i}", f"y{i}", "z"})))
from assay.model.types import canonical, to_json
print(json.dumps({"canon": canonical(m).hex(), "json": to_json(m), "keys": list(m)}))
"""


def test_canonical_and_json_forms_are_the_same_in_every_process():
    outs = []
    for seed in ("1", "2", "3"):
        p = subprocess.run([sys.executable, "-c", _CANON], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, cwd=ROOT, timeout=60)
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1] == outs[2]


# --- check: states by value -----------------------------------------------------------------------

class Board(Component):
    """Marks cells 0..2 in any order: the map holds the set of marked cells."""

    marks: Map[int, bool] = Map()

    @action(over=range(3), when=lambda self, i: i not in self.marks)
    def mark(self, i):
        self.marks = self.marks.set(i, True)


class RebuildingBoard(Board):
    """The same, building each new map from scratch, keys inserted in the reverse order."""

    @action(over=range(3), when=lambda self, i: i not in self.marks)
    def mark(self, i):
        self.marks = Map(reversed([*self.marks.items(), (i, True)]))


def board(cls: type) -> System:
    s = System("board")
    s.add("b", cls)
    s.terminal(lambda g: True)
    return s


@pytest.mark.parametrize("cls", [Board, RebuildingBoard])
def test_maps_built_in_different_orders_are_one_state(cls):
    r = check(board(cls))
    assert (r.verdict, r.reason) == ("ok", "exhausted"), r.violation
    assert r.states == 8                          # the subsets of {0, 1, 2}, not the orders


def test_paxos_holds_and_its_twin_that_ignores_promises_chooses_two_values():
    ok = check(build(PAXOS)[0])
    assert (ok.verdict, ok.reason, ok.states) == ("ok", "exhausted", 24_322), ok.violation
    bad = check(build(PAXOS_BUG)[0])
    assert bad.verdict == "violation" and bad.violation.name == "agreement"
    assert len(bad.steps) == 14
    last = bad.steps[-1]
    assert any(c.field == "votes" and c.new == Map({1: 1, 2: 2}) for c in last.changes)


def test_paxos_acceptors_keep_their_promises_across_a_crash():
    """Acceptors' records and maps are persistent fields: a crash keeps them."""
    r = check(build(PAXOS)[0], faults=Faults(crash=1))
    assert (r.verdict, r.reason, r.states) == ("ok", "exhausted", 882_069), r.violation


_PAXOS_RUN = """
import json, sys
from assay.checker import check
from assay.model.component import component_info
from assay.model.load import build
r = check(build(sys.argv[1])[0])
print(json.dumps({"states": r.states, "trace": r.trace.to_json()["events"]}))
"""


def test_paxos_counterexample_is_the_same_in_every_process():
    outs = []
    for seed in ("1", "2"):
        p = subprocess.run([sys.executable, "-c", _PAXOS_RUN, PAXOS_BUG], capture_output=True,
                           text=True, env={**os.environ, "PYTHONHASHSEED": seed}, cwd=ROOT,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1]


# --- simulate, traces and replay ------------------------------------------------------------------

def test_simulate_finds_the_paxos_bug_and_not_a_false_one():
    bad = campaign(PAXOS_BUG, None, {}, seed=5, runs=40, opts=Options(steps=100), jobs=1)
    failed = [r for r in bad.reports if r.violation is not None]
    assert failed and {r.violation["name"] for r in failed} == {"agreement"}
    good = campaign(PAXOS, None, {}, seed=5, runs=40, opts=Options(steps=100), jobs=1)
    assert all(r.violation is None for r in good.reports)


def test_a_trace_with_records_and_maps_round_trips_through_assay_replay(tmp_path):
    out = tmp_path / "cex.json"
    r = assay_cli("check", PAXOS_BUG, "--trace-out", str(out), "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(out.read_text())
    votes = [e["changes"]["a1"]["votes"] for e in doc["events"]
             if "votes" in e.get("changes", {}).get("a1", {})]
    assert votes[-1] == [[1, 1], [2, 2]]          # a Map: [key, value] pairs
    promise = next(e["message"] for e in doc["events"]
                   if e["kind"] == "deliver" and e["message"]["type"] == "Promise"
                   and e["message"]["fields"]["last"] is not None)
    assert promise["fields"]["last"] == {"type": "Vote", "fields": {"bal": 1, "val": 1}}
    for engine in ("checker", "simulator"):
        rep = assay_cli("replay", str(out), "--engine", engine)
        assert rep.returncode == 1 and "the recorded violation is reproduced" in rep.stdout, \
            rep.stdout + rep.stderr
    # the trace is checked: a recorded map that replaying does not give is an error
    steps = [e for e in doc["events"] if "votes" in e.get("changes", {}).get("a1", {})]
    steps[-1]["changes"]["a1"]["votes"] = [[2, 2], [1, 1], [3, 3]]
    out.write_text(json.dumps(doc))
    rep = assay_cli("replay", str(out))
    assert rep.returncode == 2 and "a1.votes" in rep.stderr, rep.stdout + rep.stderr


def test_an_initial_state_with_a_map_and_a_record_is_read_back_from_a_trace():
    system = build(PAXOS_BUG)[0]
    r = check(system)
    k = Kernel(build(PAXOS_BUG)[0])
    state = find_initial(k, json.loads(json.dumps(r.trace.initial)))
    for e in r.trace.events:
        ev = {key: v for key, v in e.items() if key not in RECORDED}
        state = k.step(state, k.event_id(state, ev)).state
    a1 = k.local_values(state, "a1")
    assert a1["votes"] == Map({1: 1, 2: 2}) and type(a1["votes"]) is Map
    assert a1["last"] == type(a1["last"])(2, 2)


# --- the wire -------------------------------------------------------------------------------------

class Put(Message):
    table: Map[str, Entry]
    last: Entry | None = None
    log: tuple[Color, ...] = ()


PUT = Put(Map({"b": Entry(2), "a": Entry(1, frozenset({"x", "y"}), Color(3, 4))}),
          Entry(5), (Color(1), Color(2, 2)))


def allowed(dst: str, port: str) -> dict[str, type[Message]]:
    if (dst, port) != ("b", "inp"):
        raise LookupError(port)
    return {"Put": Put}


def frame(m: Message = PUT) -> dict:
    """The frame the peer reads: through the real encoder and decoder."""
    d = envelope_to_wire(Envelope("a", "out", "b", "inp", m), 3)
    return decode_payload(encode_payload(d))


def test_records_and_maps_in_a_message_cross_the_wire_exactly():
    env, clock = envelope_from_wire(frame(), allowed)
    m = env.message
    assert (m, clock) == (PUT, 3)
    assert type(m.table) is Map and type(m.table["a"]) is Entry
    assert type(m.table["a"].color) is Color and type(m.log[0]) is Color
    assert frame()["message"]["fields"]["table"][0][0] == "a"     # canonical order


def changed(path: list, value: Any = None, delete: bool = False) -> dict:
    d = copy.deepcopy(frame())
    target = d["message"]["fields"]
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


ENTRY_A = ["table", 0, 1]          # the Entry of key "a"


@pytest.mark.parametrize("d, says", [
    (changed(["table"], {"a": {"type": "Entry", "fields": {"value": 1}}}),
     "list of \\[key, value\\] pairs"),
    (changed(["table"], [["a"]]), "a \\[key, value\\] pair"),
    (changed(["table", 1], ["a", {"type": "Entry", "fields": {"value": 1, "tags": [],
                                                             "color": None}}]),
     "'a' appears twice"),
    (changed(["table", 0, 0], 7), "expected a str"),
    (changed(["table", 0, 0], None), "expected a str"),
    (changed([*ENTRY_A, "fields", "value"], "1"), "expected an int"),
    (changed([*ENTRY_A, "fields", "value"], True), "expected an int"),
    (changed([*ENTRY_A, "fields", "value"], 10), "is 10, not int in \\[0, 9\\]"),
    (changed([*ENTRY_A, "fields", "tags"], "x"), "expected a list for a frozenset"),
    (changed([*ENTRY_A, "fields", "tags"], [1]), "expected a str"),
    (changed([*ENTRY_A, "fields", "zz"], 1), "Entry has no field 'zz'"),
    (changed([*ENTRY_A, "fields", "tags"], delete=True), "Entry is missing field 'tags'"),
    (changed([*ENTRY_A, "fields", "color", "fields", "g"], delete=True),
     "Color is missing field 'g'"),
    (changed([*ENTRY_A, "fields", "color", "fields", "r"], "3"), "expected an int"),
    (changed([*ENTRY_A, "type"], "Color"), "unknown record type 'Color'"),
    (changed([*ENTRY_A, "type"], delete=True), "a record is \\{'type', 'fields'\\}"),
    (changed([*ENTRY_A, "extra"], 1), "unexpected key 'extra'"),
    (changed([*ENTRY_A], [1, [], None]), "expected a record object"),
    (changed(["last", "fields"], [5]), "'fields' of a Entry must be an object"),
    (changed(["log", 0, "fields", "r"], 1.5), "expected an int"),
    (changed(["log", 1], {"type": "Entry", "fields": {"value": 1, "tags": [],
                                                       "color": None}}),
     "Color is missing field 'r'"),
    (changed(["log"], delete=True), "Put is missing field 'log'"),
])
def test_a_record_or_map_that_does_not_fit_its_type_is_refused_on_the_wire(d, says):
    with pytest.raises(WireError, match=says):
        envelope_from_wire(d, allowed)


def test_a_key_given_twice_in_a_record_s_json_object_is_refused():
    payload = encode_payload(envelope_to_wire(Envelope("a", "out", "b", "inp", PUT), 3))
    twice = payload.replace(b'"value":2', b'"value":2,"value":3')
    assert twice != payload
    with pytest.raises(WireError, match="duplicate key 'value'"):
        decode_payload(twice)


class Hold(Message):
    loop: Loop


def test_a_record_that_contains_itself_nested_deeply_is_refused_not_a_crash():
    for depth in (10, 300, 450, 900, 5000):
        inner = '{"type":"Loop","fields":{"me":' * depth + "null" + "}}" * depth
        frame = ('{"t":"msg","src":"a","src_port":"out","dst":"b","dst_port":"inp","clock":1,'
                 '"message":{"type":"Hold","fields":{"loop":' + inner + "}}}")
        try:
            d = decode_payload(frame.encode())
        except WireError:
            continue                               # refused by the JSON decoder already
        if depth == 10:
            env, _ = envelope_from_wire(d, lambda dst, port: {"Hold": Hold})
            assert type(env.message.loop) is Loop
        else:
            with pytest.raises(WireError, match="deep|recursion"):
                envelope_from_wire(d, lambda dst, port: {"Hold": Hold})


# --- the store ------------------------------------------------------------------------------------

def final_state_of(spec: str) -> tuple[Kernel, Any]:
    r = check(build(spec)[0])
    k = Kernel(build(spec)[0])
    state = find_initial(k, r.trace.initial)
    for e in r.trace.events:
        ev = {key: v for key, v in e.items() if key not in RECORDED}
        state = k.step(state, k.event_id(state, ev)).state
    return k, state


def test_persistent_records_and_maps_are_saved_to_sqlite_and_restored(tmp_path):
    k, state = final_state_of(PAXOS_BUG)
    i = k.index["a1"]
    before = k.local_values(state, "a1")
    saved = k.persisted("a1", state[0][i])
    assert saved == {"promised": 2, "last": {"type": "Vote", "fields": {"bal": 2, "val": 2}},
                     "votes": [[1, 1], [2, 2]]}
    path = tmp_path / "node.sqlite"
    with Store(path) as s:
        s.save("a1", saved)
    with Store(path) as s:                        # a new connection to the file on disk
        loaded = s.load("a1")
    step = k.local_restore("a1", loaded)
    values = k.instances[i].table.values[step.local]
    info = k.instances[i].info
    restored = dict(zip(info.fields, values))
    assert restored["votes"] == before["votes"] and type(restored["votes"]) is Map
    assert restored["last"] == before["last"] and type(restored["last"]) is type(before["last"])
    assert restored["promised"] == before["promised"]


def test_assay_run_resumes_paxos_acceptors_from_their_store(tmp_path):
    state = tmp_path / "state"
    first = assay_cli("run", PAXOS, "--state-dir", str(state), "--seed", "3", "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)["final"]
    decided = {tuple(map(tuple, one[a]["votes"])) for a in ("a0", "a1", "a2")}
    assert all(v for v in decided), one
    with Store(state / "local.sqlite") as s:
        assert s.load("a0") == {f: one["a0"][f] for f in ("promised", "last", "votes")}
    second = assay_cli("run", PAXOS, "--state-dir", str(state), "--seed", "4", "--json")
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)["final"]
    for a in ("a0", "a1", "a2"):                  # nothing a restarted proposer does changes them
        assert two[a] == one[a]


def test_paxos_deployed_over_tcp_agrees_and_its_trace_replays(children, tmp_path):
    from runtime_support import free_ports, replay, write_deployment

    ports = free_ports(3)
    placement = {"n1": ["a0", "p1"], "n2": ["a1", "p2"], "n3": ["a2"]}
    dep = write_deployment(tmp_path / "deploy.toml", "paxos.py",
                           {n: (p, insts) for (n, insts), p in zip(placement.items(), ports)})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--state-dir", tmp_path / "state",
                     "--trace-out", trace, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    votes = [doc["final"][a]["votes"] for a in ("a0", "a1", "a2")]
    assert all(isinstance(v, list) for v in votes)
    done = replay(children, trace)
    assert len(done["events"]) == doc["steps"] > 0


# --- changes in place are spec errors ------------------------------------------------------------

@pytest.mark.parametrize("fixture, line, fixes", [
    ("tuple_item_assign.py", 11,
     ["write self.flag = self.flag[:i] + (True,) + self.flag[i + 1:]",
      "write self.flag = self.flag.set(i, True)"]),
    ("tuple_item_assign_dynamic.py", 12, ["write flags = flags[:0] + (True,) + flags[1:]"]),
    ("map_item_assign.py", 24, ["write self.votes = self.votes.set(m.sender, True)"]),
    ("record_field_assign_dynamic.py", 16, ["b = b.replace(n=b.n + 1)"]),
])
def test_a_change_in_place_is_exit_2_at_its_line_with_the_fix(fixture, line, fixes):
    rel = f"tests/fixtures/bad_specs/{fixture}"
    r = assay_cli("check", rel)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(f"{rel}:{line}: error: "), r.stderr
    assert "immutable" in r.stderr and "Traceback" not in r.stderr
    flat = " ".join(r.stderr.split())
    for fix in fixes:
        assert fix in flat, r.stderr


def test_changing_a_tuple_item_at_run_time_is_a_spec_error_not_a_violation():
    class Flags(Component):
        flag: tuple[bool, ...] = (False, False)

        @action(over=range(2), when=lambda self, i: not self.flag[i])
        def up(self, i):
            f = self.flag
            f[i] = True

    s = System("flags")
    s.add("a", Flags)
    with pytest.raises(SpecError) as info:
        check(s)
    assert "a.up assigns an item of a tuple, which is immutable" in info.value.message
    assert info.value.location is not None and info.value.location.file == __file__
    assert any("f = f[:i] + (True,) + f[i + 1:]" in n for n in info.value.notes)


def _raised(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as e:        # noqa: BLE001 - the exception is what the test looks at
        return e
    raise AssertionError("did not raise")


def _set_item(x: Any, k: Any, v: Any) -> None:
    x[k] = v


def _del_item(x: Any, k: Any) -> None:
    del x[k]


def _bump(x: Any) -> None:
    x[0] += 1


@pytest.mark.parametrize("fn, what, fix", [
    (lambda: _set_item((1, 2), 0, 5), "assigns an item of a tuple",
     "write x = x[:k] + (v,) + x[k + 1:]"),
    (lambda: _del_item((1, 2), 1), "deletes an item of a tuple", "write x = x[:k] + x[k + 1:]"),
    (lambda: _bump((1, 2)), "assigns an item of a tuple", "write x = x[:0] + (x[0] + 1,) + x[1:]"),
    (lambda: _set_item(frozenset({1}), 0, 5), "assigns an item of a frozenset",
     "x = x | {v} adds an element"),
    (lambda: _del_item(frozenset({1}), 1), "deletes an item of a frozenset",
     "x = x - {k} removes an element"),
    (lambda: _set_item(Map({1: 2}), 1, 3), "assigns an item of a Map", "write x = x.set(k, v)"),
    (lambda: _del_item(Map({1: 2}), 1), "deletes an item of a Map", "write x = x.remove(k)"),
    (lambda: _set_item("ab", 0, "c"), "assigns an item of a str", "strings are immutable"),
])
def test_a_change_in_place_says_what_it_did_and_how_to_write_it(fn, what, fix):
    from assay.model.wellformed import immutable_change

    got = immutable_change(_raised(fn))
    assert got is not None and got[0].startswith(what) and "immutable" in got[0]
    assert any(fix in n for n in got[1]), got


def test_other_type_errors_are_the_model_s_behaviour():
    from assay.model.wellformed import immutable_change

    assert immutable_change(_raised(lambda: (1, 2) + 3)) is None
    assert immutable_change(_raised(lambda: Map()[1])) is None           # a KeyError


def test_a_tuple_built_and_read_by_a_handler_is_fine():
    class Flags(Component):
        flag: tuple[bool, ...] = (False, False)

        @action(over=range(2), when=lambda self, i: not self.flag[i])
        def up(self, i):
            self.flag = self.flag[:i] + (True,) + self.flag[i + 1:]

    s = System("flags")
    s.add("a", Flags)
    s.terminal(lambda g: True)
    assert check(s).states == 4


# --- verify: never proved where not translated ---------------------------------------------------

def verify_json(spec: Path | str) -> dict[str, Any]:
    r = assay_cli("verify", str(spec), "--json")
    assert r.returncode in (1, 3), r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("fixture, field", [("bug_map_invariant.py", "balances"),
                                            ("bug_record_invariant.py", "account")])
def test_verify_does_not_prove_an_invariant_a_record_or_map_bug_breaks(fixture, field):
    doc = verify_json(FIX / "records" / fixture)
    kept = [o for o in doc["obligations"] if o["kind"] == "invariant"]
    assert kept and all(o["verdict"] in ("unknown", "refuted") for o in kept), kept
    for o in kept:
        if o["verdict"] == "unknown":
            assert "not translated" in o["reason"], o
    assert doc["verdict"] != "proved"
    assert check(build(str(FIX / "records" / fixture))[0]).verdict == "violation"


def test_verify_reports_what_iterates_a_map_as_unknown_and_translates_records():
    doc = verify_json(PAXOS)
    assert doc["verdict"] == "unknown"
    by_target = {(o["component"], o["target"], o["kind"]): o for o in doc["obligations"]}
    for key, o in by_target.items():
        if key[1] == "on_promise":      # highest(self.promises.values()) iterates a map
            assert o["verdict"] == "unknown", o
            assert "iteration over a Map is not translated" in o["reason"], o
        else:                           # the Vote records and the maps are translated
            assert o["verdict"] == "proved", o
    assert by_target[("Acceptor", "on_prepare", "no-exception")]["verdict"] == "proved"


# --- verify: records are translated exactly ------------------------------------------------------

class Tag(enum.Enum):
    A = 1
    B = 2


class Pt(Record):
    x: int
    tag: Tag = Tag.A


class Twin(Record):                  # the same fields as Pt, another type: never equal to a Pt
    x: int
    tag: Tag = Tag.A


class _Recs(Component):
    p: Pt = Pt(0)
    q: Pt = Pt(0)
    o: Pt | None = None
    s: frozenset[Pt] = frozenset()
    n: int = 0


RECORD_TERMS = [
    (lambda self: self.p == self.q, lambda p, q, o, s, n: p == q),
    (lambda self: self.p != self.q, lambda p, q, o, s, n: p != q),
    (lambda self: self.p.x + self.q.x, lambda p, q, o, s, n: p.x + q.x),
    (lambda self: self.p.tag == Tag.B, lambda p, q, o, s, n: p.tag == Tag.B),
    (lambda self: self.p.replace(x=self.n) == self.q,
     lambda p, q, o, s, n: p.replace(x=n) == q),
    (lambda self: self.p.replace(tag=Tag.B).x, lambda p, q, o, s, n: p.replace(tag=Tag.B).x),
    (lambda self: Pt(self.n, self.q.tag) == self.q, lambda p, q, o, s, n: Pt(n, q.tag) == q),
    (lambda self: Pt(x=self.n) == self.p, lambda p, q, o, s, n: Pt(x=n) == p),
    (lambda self: Twin(self.p.x, self.p.tag) == self.p,
     lambda p, q, o, s, n: Twin(p.x, p.tag) == p),
    (lambda self: self.p in self.s, lambda p, q, o, s, n: p in s),
    (lambda self: self.p.replace(x=self.n) in self.s | {self.q},
     lambda p, q, o, s, n: p.replace(x=n) in s | {q}),
    (lambda self: self.o == self.p, lambda p, q, o, s, n: o == p),
    (lambda self: self.o is None or self.o.x > self.n,
     lambda p, q, o, s, n: o is None or o.x > n),
    (lambda self: self.o.x, lambda p, q, o, s, n: o.x),              # raises on None
    (lambda self: bool(self.p) and not self.o, lambda p, q, o, s, n: bool(p) and not o),
    (lambda self: (self.p if self.n > 0 else self.q).x,
     lambda p, q, o, s, n: (p if n > 0 else q).x),
]

pts = st.builds(Pt, st.integers(-2, 2), st.sampled_from(Tag))


@given(st.data())
@settings(max_examples=120, deadline=None, database=None)
def test_the_translation_of_records_means_what_python_computes(data: Any) -> None:
    """On concrete records, every translated term has exactly Python's value, and raises
    (a check that fails) exactly where Python raises."""
    import z3

    from assay.verifier import types as vtypes
    from assay.verifier import verify as V
    from assay.verifier.statements import St, Translator, _Activation

    p, q = data.draw(pts), data.draw(pts)
    o = data.draw(st.one_of(st.none(), pts))
    s = data.draw(st.frozensets(pts, max_size=3))
    n = data.draw(st.integers(-2, 2))
    fn, py = data.draw(st.sampled_from(RECORD_TERMS))
    try:
        want: Any = py(p, q, o, s, n)
    except AttributeError:
        want = AttributeError
    enc = V.encoding(component_info(_Recs))
    tr = Translator(enc, contract=True)
    got = tr.run_function(fn, [vtypes.SelfObj(dict(enc.pre))],
                          St(z3.BoolVal(True), dict(enc.pre), {}, {}, _Activation(fn)))
    solver = z3.Solver()
    for f, v in (("p", p), ("q", q), ("o", o), ("s", s), ("n", n)):
        solver.add(enc.pre[f].e == vtypes.to_z3(v, enc.types[f], {}))
    ok = z3.And([z3.Implies(c.pc, c.ok) for c in tr.checks]) if tr.checks else z3.BoolVal(True)
    if want is AttributeError:
        solver.add(ok)
        assert solver.check() == z3.unsat         # some check fails: the term raises
        return
    solver.add(ok)
    assert solver.check() == z3.sat               # no check fails where Python does not raise
    wanted = z3.IntVal(want) if type(want) is int else z3.BoolVal(want)
    solver.add(got.e != wanted)
    assert solver.check() == z3.unsat, (fn, p, q, o, s, n)


@pytest.mark.parametrize("fixture, verdicts", [
    ("ok_record_invariant.py", {"invariant": "proved", "init": "proved"}),
    ("bug_record_invariant.py", {"invariant": "refuted"}),
    ("bug_optional_record.py", {"no-exception": "refuted"}),
])
def test_verify_proves_and_refutes_record_specs_as_check_finds_them(fixture, verdicts):
    doc = verify_json(FIX / "records" / fixture) if fixture.startswith("bug") else \
        json.loads(assay_cli("verify", str(FIX / "records" / fixture), "--json").stdout)
    for kind, verdict in verdicts.items():
        got = {o["verdict"] for o in doc["obligations"] if o["kind"] == kind}
        assert verdict in got, (kind, doc["obligations"])
    found = check(build(str(FIX / "records" / fixture))[0]).verdict
    assert found == ("ok" if fixture.startswith("ok") else "violation")
    if fixture.startswith("ok"):
        assert doc["verdict"] == "proved"


class Loop(Record):                  # a record that may contain itself: no finite Z3 datatype
    me: Loop | None = None


def test_records_a_spec_changes_are_opaque_to_verify_where_they_are_not_plain():
    from assay.verifier.types import Opaque, ty_of_spec

    class Fancy(Record):
        x: int

        def __eq__(self, other):
            return True

        __hash__ = Record.__hash__

    class Base(Record):
        def x(self):
            return 1

    class Shadow(Base):                           # `Shadow(2).x` is Base's method, not 2
        x: int

    for cls in (Fancy, Shadow, Loop):
        assert isinstance(ty_of_spec(parse_type(cls)), Opaque), cls
    assert not isinstance(ty_of_spec(parse_type(Pt)), Opaque)

