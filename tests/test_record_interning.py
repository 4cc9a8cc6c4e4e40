"""Hash-consing of records and messages (`assay.model.record`): `Phase2b(acc, rm, b, v)` returns
the record of its class with those values already built when every value is of a type whose
equality is identity of type and value; anything else is built anew.  Either way equality,
hashing, the JSON form, pickling and type checks are those of the values."""
from __future__ import annotations

import pickle
import subprocess
import sys
from enum import Enum
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import assay.model.record as record_module
from assay.model.message import Message
from assay.model.record import Record, record_from_json
from assay.model.types import Peer

ROOT = Path(__file__).resolve().parent.parent


class Val(Enum):
    YES = "yes"
    NO = "no"


class Vote(Message):
    acc: int
    bal: int
    val: Val


class Flag(Record):
    on: int


class Named(Record):
    who: Peer


class Holder(Record):
    m: Vote


class Pair(Record):
    a: int
    b: int = 0


def test_a_record_of_unique_typed_values_is_built_once_and_found_by_identity():
    v = Vote(1, 2, Val.YES)
    assert Vote(1, 2, Val.YES) is v
    assert Vote(acc=1, bal=2, val=Val.YES) is v          # by name: the same record
    assert Vote(1, 2, Val.NO) is not v and Vote(1, 2, Val.NO) != v
    assert Pair(3) is Pair(3, 0) is Pair(a=3)             # a default is a value like any
    assert Vote(1, 2, Val.YES) in frozenset({v})


def test_values_equal_in_python_but_of_other_types_are_not_conflated():
    # 1 == True and "a" == Peer("a") in Python: the record built keeps the type it was given
    # (its type check and JSON form depend on it), whichever was built first
    one = Flag(1)
    true = Flag(True)
    assert type(true.on) is bool and type(one.on) is int
    assert type(Flag(1).on) is int and type(Flag(True).on) is bool
    assert Flag.__assay_conforms__(Flag(1)) and not Flag.__assay_conforms__(Flag(True))
    assert Flag(True).to_json() == {"type": "Flag", "fields": {"on": True}}
    s = Named("a")
    p = Named(Peer("a"))
    assert type(p.who) is Peer and type(Named(Peer("a")).who) is Peer
    assert type(s.who) is str and type(Named("a").who) is str
    assert Named.__assay_conforms__(Named(Peer("a")))


def test_a_record_holding_a_message_keeps_that_message_s_sender():
    m = Vote(1, 1, Val.NO)
    from_a, from_b = m.with_sender("a"), m.with_sender("b")
    assert from_a == from_b == m and from_a is not m
    assert Holder(from_a).m.sender == "a"
    assert Holder(from_b).m.sender == "b"         # not the record built for a's copy
    assert Holder(from_a) == Holder(from_b)        # the sender is no part of equality


def test_with_sender_copies_equal_and_hash_as_the_interned_message():
    m = Vote(2, 0, Val.YES)
    c = m.with_sender("x", (("k", 1),))
    assert c == m and hash(c) == hash(m) and c.sender == "x" and m.sender is None
    assert Vote(2, 0, Val.YES).sender is None      # the interned one is not the copy
    assert c in {m} and m in {c}


def test_the_table_is_bounded_and_a_record_from_before_it_was_emptied_is_still_equal(
        monkeypatch):
    monkeypatch.setattr(record_module, "INTERN_LIMIT", 8)
    Pair.__assay_table__.clear()
    first = Pair(100, 1)
    for i in range(50):
        Pair(i, 2)
        assert len(Pair.__assay_table__) <= 8
    again = Pair(100, 1)
    assert again is not first and again == first and hash(again) == hash(first)
    assert len({first, again}) == 1


def test_pickling_and_json_give_back_an_equal_record():
    v = Vote(7, 3, Val.NO)
    assert pickle.loads(pickle.dumps(v)) == v
    assert pickle.loads(pickle.dumps(v)) is Vote(7, 3, Val.NO)     # rebuilt by its class
    assert record_from_json(v.to_json(), {"Vote": Vote}) is v
    h = Holder(v.with_sender("a"))
    assert pickle.loads(pickle.dumps(h)) == h


@given(st.lists(st.tuples(st.integers(-300, 300), st.integers(-2, 2),
                          st.sampled_from(list(Val))), max_size=30))
def test_equal_values_give_one_record_and_unequal_ones_distinct_records(rows):
    built = [Vote(*r) for r in rows]
    for r, v in zip(rows, built):
        assert v.values() == r
        assert Vote(*r) == v and hash(Vote(*r)) == hash(v)
    assert len(set(built)) == len(set(rows))


def test_interning_does_not_depend_on_the_hash_seed():
    # the set of distinct records and their canonical forms are the same under any seed
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.test_record_interning import Vote, Val\n"
            "from assay.model.types import canonical\n"
            "vs = {Vote(a, b, v) for a in range(4) for b in range(4) for v in Val}\n"
            "print(len(vs), sorted(canonical(x).hex() for x in vs)[:3])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True).stdout
            for seed in ("0", "1", "2")}
    assert len(outs) == 1 and outs.pop().startswith("32 ")


class Odd(Record):       # fields named like the constructor's own parameters
    c: int
    cls: int
    args: int
    kwargs: int = 0


def test_fields_named_like_the_constructor_s_parameters_are_fields():
    o = Odd(c=1, cls=2, args=3, kwargs=4)
    assert o.values() == (1, 2, 3, 4) and Odd(1, 2, 3, 4) is o
    assert Odd(1, cls=2, args=3).kwargs == 0
