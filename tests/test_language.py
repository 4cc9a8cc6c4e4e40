"""The spec language: messages, components, fields, initial values, actions, guards, the API.

Each behaviour is shown on a spec where it matters: a case with a known bug (which assay
must find) and one without (which must pass).  Components are defined at module level: the
kernel reads their source for some checks.
"""
from __future__ import annotations

import enum
import importlib
from typing import Annotated

import pytest

import assay
from assay import Component, Message, Peer, Port, Range, System, action, on, one_of
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Fire, Kernel
from assay.model.component import component_info
from assay.model.message import message_from_json

# --- messages -----------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Ping(Message):
    n: int


class Pong(Message):
    n: int


class Note(Message):
    text: str
    count: int = 1
    urgent: bool = False


class Bag(Message):
    items: frozenset[int]
    color: Color
    inner: Ping


class Bounded(Message):
    n: Annotated[int, Range(0, 3)]


def test_message_fields_are_declared_by_annotations_in_order():
    assert Note.__assay_fields__ == ("text", "count", "urgent")
    types = Note.field_types()
    assert {n: t.describe() for n, t in types.items()} == {
        "text": "str", "count": "int", "urgent": "bool"}
    assert Bounded.field_types()["n"].describe() == "int in [0, 3]"


def test_message_field_values_are_read_as_attributes():
    m = Note("hi", 2, True)
    assert (m.text, m.count, m.urgent) == ("hi", 2, True)
    assert m.values() == ("hi", 2, True)


def test_message_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no field 'nope'"):
        Ping(1).nope  # noqa: B018


def test_message_defaults_fill_missing_fields():
    m = Note("hi")
    assert (m.count, m.urgent) == (1, False)
    assert Note("hi", urgent=True) == Note("hi", 1, True)


def test_message_is_constructed_positionally_or_by_keyword_alike():
    assert Note("a", 2, True) == Note(text="a", count=2, urgent=True) == Note("a", urgent=True,
                                                                              count=2)


def test_message_missing_required_field_is_a_type_error():
    with pytest.raises(TypeError, match="missing field 'n'"):
        Ping()


def test_message_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="no field 'm'"):
        Ping(1, m=1)


def test_message_too_many_positional_arguments_is_a_type_error():
    with pytest.raises(TypeError, match="takes 1 field"):
        Ping(1, 2)


def test_message_is_immutable():
    m = Ping(1)
    with pytest.raises(AttributeError, match="immutable"):
        m.n = 2
    with pytest.raises(AttributeError, match="immutable"):
        m.sender = "x"
    with pytest.raises(AttributeError, match="immutable"):
        m.other = 3
    assert m.n == 1


def test_messages_are_equal_and_hash_equal_by_value():
    assert Ping(1) == Ping(1)
    assert hash(Ping(1)) == hash(Ping(1))
    assert Ping(1) != Ping(2)
    assert len({Ping(1), Ping(1), Ping(2)}) == 2
    assert Bag(frozenset({1, 2}), Color.RED, Ping(3)) == Bag(frozenset({2, 1}), Color.RED, Ping(3))


def test_messages_of_different_types_with_the_same_fields_are_not_equal():
    assert Ping(1) != Pong(1)
    assert (Ping(1) == Pong(1)) is False
    assert len({Ping(1), Pong(1)}) == 2


def test_message_sender_takes_no_part_in_equality_or_hash():
    a = Ping(1).with_sender(Peer("rm0"))
    b = Ping(1).with_sender(Peer("rm1"))
    assert a.sender == "rm0" and b.sender == "rm1"
    assert a == b == Ping(1)
    assert hash(a) == hash(b) == hash(Ping(1))
    assert Ping(1).sender is None


def test_message_repr_is_readable():
    assert repr(Ping(3)) == "Ping(n=3)"
    assert repr(Note("hi")) == "Note(text='hi', count=1, urgent=False)"
    assert "0x" not in repr(Bag(frozenset({1}), Color.RED, Ping(1)))


def test_message_to_json_names_type_and_fields():
    assert Ping(3).to_json() == {"type": "Ping", "fields": {"n": 3}}
    j = Bag(frozenset({3, 1, 2}), Color.GREEN, Ping(7)).to_json()
    assert j == {"type": "Bag", "fields": {
        "items": [1, 2, 3], "color": "GREEN",
        "inner": {"type": "Ping", "fields": {"n": 7}}}}


def test_message_json_round_trips():
    m = Bag(frozenset({3, 1}), Color.BLUE, Ping(7))
    assert message_from_json(m.to_json(), {"Bag": Bag}) == m
    with pytest.raises(ValueError, match="unknown message type"):
        message_from_json(Ping(1).to_json(), {"Bag": Bag})


def test_message_with_a_wrongly_typed_field_names_the_field():
    assert Ping(1).bad_field() is None
    assert "field 'n' of Ping" in Ping("one").bad_field()
    assert Bounded(3).bad_field() is None
    assert "int in [0, 3]" in Bounded(4).bad_field()
    assert Ping(True).bad_field() is not None      # a bool is not an int


def test_message_with_a_mutable_default_is_rejected_when_typed():
    class WithList(Message):
        xs: tuple = []                          # type: ignore[assignment]

    with pytest.raises(Exception, match="mutable"):
        WithList.field_types()


# --- components: fields and initial states -------------------------------------------------------


class Light(Component):
    p = Port()
    color: Color = Color.RED
    count: int = 0
    label: str = "x"
    seen: frozenset = frozenset()


class Dice(Component):
    p = Port()
    a: int = one_of(1, 2)
    b: Color = one_of(Color.RED, Color.GREEN, Color.BLUE)


class Coin(Component):
    p = Port()
    side: bool = one_of(False, True)


def initial_values(system: System, name: str) -> list[dict]:
    k = Kernel(system)
    return [k.local_values(s, name) for s, _ in k.initial_states()]


def test_component_fields_are_its_annotated_class_attributes_with_types_and_defaults():
    info = component_info(Light)
    assert info.fields == ("color", "count", "label", "seen")
    assert [t.describe() for t in info.types] == ["Color", "int", "str", "frozenset[value]"]
    assert info.initial == ((Color.RED,), (0,), ("x",), (frozenset(),))
    assert set(info.ports) == {"p"}


def test_component_initial_state_is_its_defaults():
    s = System("one")
    s.add("l", Light)
    assert initial_values(s, "l") == [
        {"color": Color.RED, "count": 0, "label": "x", "seen": frozenset()}]


def test_one_of_gives_one_initial_state_per_combination_of_a_components_fields():
    s = System("dice")
    s.add("d", Dice)
    vals = initial_values(s, "d")
    assert len(vals) == 6
    assert {(v["a"], v["b"]) for v in vals} == {(a, b) for a in (1, 2) for b in Color}


def test_one_of_initial_states_are_the_product_across_instances():
    s = System("coins")
    for i in range(3):
        s.add(f"c{i}", Coin)
    k = Kernel(s)
    states = [s for s, _ in k.initial_states()]
    assert len(states) == 8
    combos = {tuple(k.local_values(st, f"c{i}")["side"] for i in range(3)) for st in states}
    assert len(combos) == 8


def test_add_with_a_keyword_overrides_a_fields_initial_value():
    s = System("o")
    s.add("l", Light, count=5, color=Color.BLUE)
    assert initial_values(s, "l") == [
        {"color": Color.BLUE, "count": 5, "label": "x", "seen": frozenset()}]


def test_add_with_a_keyword_overrides_a_one_of_field():
    s = System("o")
    s.add("d", Dice, a=2)
    assert {v["a"] for v in initial_values(s, "d")} == {2}
    assert len(initial_values(s, "d")) == 3


def test_add_with_one_of_gives_an_instance_several_initial_values():
    s = System("o")
    s.add("l", Light, count=one_of(1, 2, 3))
    assert sorted(v["count"] for v in initial_values(s, "l")) == [1, 2, 3]


def test_add_overrides_one_instance_only():
    s = System("o")
    s.add("a", Light, count=9)
    s.add("b", Light)
    assert initial_values(s, "a")[0]["count"] == 9
    assert initial_values(s, "b")[0]["count"] == 0


def test_add_with_an_unknown_field_is_a_spec_error():
    s = System("o")
    with pytest.raises(SpecError, match="no field 'colour'"):
        s.add("l", Light, colour=Color.RED)


def test_add_with_an_initial_value_of_the_wrong_type_is_a_spec_error():
    s = System("o")
    with pytest.raises(SpecError, match="not a int"):
        s.add("l", Light, count="five")


def test_component_field_without_initial_value_is_a_spec_error():
    class NoInit(Component):
        p = Port()
        x: int

    with pytest.raises(SpecError, match="no initial value"):
        component_info(NoInit)


def test_component_field_with_a_mutable_type_is_a_spec_error():
    class Mut(Component):
        p = Port()
        xs: set = frozenset()

    with pytest.raises(SpecError, match="mutable"):
        component_info(Mut)


# --- Range-bounded ints --------------------------------------------------------------------------


class Tick(Message):
    pass


class Gauge(Component):
    """Counts ticks into a field bounded to [0, 2]; the buggy variant overshoots."""

    src = Port()
    level: Annotated[int, Range(0, 2)] = 0

    @on(Tick)
    def tick(self, m):
        self.level += 1


class SafeGauge(Component):
    src = Port()
    level: Annotated[int, Range(0, 2)] = 0

    @on(Tick)
    def tick(self, m):
        self.level = min(self.level + 1, 2)


class Ticker(Component):
    dst = Port()
    sent: int = 0

    @action(when=lambda self: self.sent < 3)
    def tick(self):
        self.sent += 1
        self.dst.send(Tick())


def gauge_system(gauge: type[Component]) -> System:
    s = System("gauge")
    t = s.add("t", Ticker)
    g = s.add("g", gauge)
    s.connect(t.dst, g.src)
    s.terminal(lambda w: w["t"].sent == 3 and not w.in_flight())
    return s


def test_range_handler_exceeding_the_range_is_a_type_violation_blaming_the_handler():
    r = check(gauge_system(Gauge))
    assert r.verdict == "violation"
    assert r.violation.kind == "type"
    assert r.violation.blame == "g.tick"
    assert "level" in r.violation.message and "3" in r.violation.message
    assert "[0, 2]" in r.violation.message


def test_range_handler_staying_in_range_passes():
    r = check(gauge_system(SafeGauge))
    assert r.verdict == "ok", r.violation


def test_range_initial_value_outside_the_range_is_a_spec_error():
    class Out(Component):
        p = Port()
        x: Annotated[int, Range(0, 2)] = 5

    with pytest.raises(SpecError, match="initial value 5"):
        component_info(Out)


def test_range_override_outside_the_range_is_a_spec_error():
    s = System("o")
    with pytest.raises(SpecError, match="not a int in"):
        s.add("g", Gauge, level=3)


def test_range_must_not_be_empty():
    with pytest.raises(ValueError):
        Range(3, 1)


# --- actions: guards and parameters -------------------------------------------------------------


def fired(k: Kernel, state) -> list[Fire]:
    return [k.event(e) for e in k.enabled_events(state) if e < 0]


class Guarded(Component):
    p = Port()
    x: int = 0

    @action(when=lambda self: self.x < 2)
    def inc(self):
        self.x += 1

    @action(when=lambda self: self.x == 2)
    def reset(self):
        self.x = 0

    @action()
    def always_on(self):
        pass


def test_when_guard_enables_an_action_only_where_it_holds():
    s = System("g")
    s.add("g", Guarded)
    k = Kernel(s)
    st = k.initial_states()[0][0]
    names = lambda st: sorted(f.action for f in fired(k, st))   # noqa: E731
    assert names(st) == ["always_on", "inc"]
    for _ in range(2):
        inc = next(e for e in k.enabled_events(st) if k.event(e).action == "inc")
        st = k.step(st, inc).state
    assert k.local_values(st, "g")["x"] == 2
    assert names(st) == ["always_on", "reset"]


class Painter(Component):
    """Paints over a list, an Enum class, or the peers of its port."""

    out = Port(many=True)
    n: int = 0
    color: Color = Color.RED
    last: str = ""

    @action(over=[1, 2, 3], when=lambda self, v: v != self.n)
    def set_n(self, v):
        self.n = v

    @action(over=Color)
    def paint(self, c):
        self.color = c

    @action(over=lambda self: self.out.peers)
    def pick(self, peer):
        self.last = peer


class Canvas(Component):
    inp = Port()


def painter_system() -> System:
    s = System("paint")
    p = s.add("p", Painter)
    for name in ("b", "a", "c"):
        s.connect(p.out, s.add(name, Canvas).inp)
    return s


def test_action_over_a_list_is_one_event_per_value_passing_the_guard():
    k = Kernel(painter_system())
    st = k.initial_states()[0][0]
    args = [f.arg for f in fired(k, st) if f.action == "set_n"]
    assert args == [1, 2, 3]
    one = next(e for e in k.enabled_events(st)
               if k.event(e) == Fire("p", "set_n", 1, True))
    st2 = k.step(st, one).state
    assert k.local_values(st2, "p")["n"] == 1
    assert [f.arg for f in fired(k, st2) if f.action == "set_n"] == [2, 3]


def test_action_over_an_enum_class_is_one_event_per_member():
    k = Kernel(painter_system())
    st = k.initial_states()[0][0]
    assert [f.arg for f in fired(k, st) if f.action == "paint"] == list(Color)
    blue = k.event_id(st, Fire("p", "paint", Color.BLUE, True))
    assert k.local_values(k.step(st, blue).state, "p")["color"] is Color.BLUE


def test_action_over_a_function_of_self_is_one_event_per_value_it_returns():
    k = Kernel(painter_system())
    st = k.initial_states()[0][0]
    args = [f.arg for f in fired(k, st) if f.action == "pick"]
    assert sorted(args) == ["a", "b", "c"]
    assert all(isinstance(a, Peer) for a in args)


def test_action_over_a_set_is_listed_in_a_deterministic_sorted_order():
    # the domain is a frozenset of peers: its iteration order depends on the process's string
    # hash seed, so the kernel must sort it for events (and DFS, traces) to be reproducible.
    # Eight peers: a hash order that happens to be sorted has odds of 1 in 40,320.
    names = ["h", "c", "a", "f", "b", "g", "e", "d"]
    s = System("paint8")
    p = s.add("p", Painter)
    for name in names:
        s.connect(p.out, s.add(name, Canvas).inp)
    k = Kernel(s)
    st = k.initial_states()[0][0]
    args = [f.arg for f in fired(k, st) if f.action == "pick"]
    assert args == sorted(names)


def test_parameterised_event_names_its_argument():
    k = Kernel(painter_system())
    st = k.initial_states()[0][0]
    ev = k.event_id(st, Fire("p", "set_n", 2, True))
    assert str(k.event(ev)) == "p fires set_n(2)"
    assert k.event(ev).to_json() == {"kind": "action", "instance": "p", "action": "set_n",
                                     "arg": 2}


def test_action_over_an_empty_domain_is_a_spec_error():
    class Empty(Component):
        p = Port()

        @action(over=[])
        def nothing(self, v):
            pass

    with pytest.raises(SpecError, match="empty"):
        component_info(Empty)


def test_action_with_over_must_take_the_value():
    class NoArg(Component):
        p = Port()

        @action(over=[1, 2])
        def nothing(self):
            pass

    with pytest.raises(SpecError, match="takes 1 argument"):
        component_info(NoArg)


# a parameterised action with a known bug: a guard too weak lets a bounded field overflow

class Stepper(Component):
    p = Port()
    pos: Annotated[int, Range(0, 3)] = 0

    @action(over=[1, 2], when=lambda self, d: self.pos < 3)       # BUG: pos + d may exceed 3
    def move(self, d):
        self.pos += d


class SafeStepper(Component):
    p = Port()
    pos: Annotated[int, Range(0, 3)] = 0

    @action(over=[1, 2], when=lambda self, d: self.pos + d <= 3)
    def move(self, d):
        self.pos += d


def stepper_system(cls: type[Component]) -> System:
    s = System("stepper")
    s.add("s", cls)
    s.terminal(lambda g: g["s"].pos == 3)
    return s


def test_weak_guard_of_a_parameterised_action_is_found():
    r = check(stepper_system(Stepper))
    assert r.verdict == "violation"
    assert r.violation.kind == "type" and r.violation.blame == "s.move"
    assert r.steps[-1].event_json == {"kind": "action", "instance": "s", "action": "move",
                                      "arg": 2}


def test_exact_guard_of_a_parameterised_action_passes():
    r = check(stepper_system(SafeStepper))
    assert r.verdict == "ok", r.violation
    assert r.states == 4


# --- the public API -------------------------------------------------------------------------------

SPEC_NAMES = {"Component", "Interceptor", "Map", "Message", "Peer", "Port", "Range", "Record",
              "System", "action", "ensures", "external_store", "initially", "invariant", "on",
              "on_restart", "on_start", "one_of", "persistent", "protocol", "requires"}


def test_public_api_exports_exactly_what_a_spec_needs():
    assert set(assay.__all__) == SPEC_NAMES
    assert len(assay.__all__) == len(SPEC_NAMES)


@pytest.mark.parametrize("name", sorted(SPEC_NAMES))
def test_public_api_name_is_importable(name):
    module = importlib.import_module("assay")
    assert getattr(module, name) is not None
    ns: dict = {}
    exec(f"from assay import {name}", ns)
    assert ns[name] is getattr(module, name)


def test_star_import_gives_the_spec_names_only():
    ns: dict = {}
    exec("from assay import *", ns)
    assert {k for k in ns if not k.startswith("__")} == SPEC_NAMES


class Untyped(Message):
    items: frozenset


class TakesUntyped(Component):
    p = Port()

    @on(Untyped)
    def got(self, m):
        pass


def test_message_field_without_element_type_is_rejected_at_load():
    """Messages are decoded by their declared types (traces, the wire): `frozenset` alone says
    too little, `frozenset[int]` is fine."""
    from assay.errors import SpecError
    from assay.kernel import Kernel

    s = System("untyped")
    a = s.add("a", TakesUntyped)
    b = s.add("b", TakesUntyped)
    s.connect(a.p, b.p)
    with pytest.raises(SpecError, match="frozenset.*element types"):
        Kernel(s)
