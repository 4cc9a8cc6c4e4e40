"""`assay.model.frozen.fast_init`: the faster `__init__` of the frozen, slotted dataclasses made
per message builds the same objects as the dataclass's own, and refuses what it cannot build."""
from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from assay.kernel.events import Envelope
from assay.kernel.exec import Send
from assay.kernel.kernel import LocalStep
from assay.model.frozen import fast_init
from assay.runtime.wire import MsgFrame


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int
    c: tuple[Any, ...] = ()
    d: Any = None
    k: ClassVar[int] = 7


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: str
    b: int
    c: tuple[Any, ...] = ()
    d: Any = None
    k: ClassVar[int] = 7


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("x", 1), {}),
    (("x", 1, (2, 3)), {}),
    (("x", 1, (2,), "d"), {}),
    ((), {"a": "x", "b": 1}),
    (("x",), {"b": 2, "d": frozenset({1})}),
    ((), {"d": 0, "c": (1,), "b": 3, "a": "y"}),
]


def fields_of(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_fast_init_sets_what_the_dataclass_init_sets(args: tuple, kwargs: dict) -> None:
    slow, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)
    assert fields_of(fast) == fields_of(slow)
    assert all(x is y for x, y in zip(fields_of(fast), fields_of(slow)))
    assert repr(fast).replace("Fast", "Plain") == repr(slow)
    assert fast == Fast(*args, **kwargs) and hash(fast) == hash(Fast(*args, **kwargs))
    assert pickle.loads(pickle.dumps(fast)) == fast
    assert dataclasses.replace(fast, b=9).b == 9 and dataclasses.replace(fast, b=9).a == fast.a


@pytest.mark.parametrize(("args", "kwargs"), [
    (("x",), {}),                       # b missing
    (("x", 1, (), None, 5), {}),        # one too many
    (("x", 1), {"e": 1}),               # no such field
    (("x", 1), {"a": "y"}),             # a twice
])
def test_fast_init_refuses_the_calls_the_dataclass_init_refuses(args: tuple,
                                                                 kwargs: dict) -> None:
    with pytest.raises(TypeError):
        Plain(*args, **kwargs)
    with pytest.raises(TypeError):
        Fast(*args, **kwargs)


def test_a_fast_init_object_stays_frozen() -> None:
    obj = Fast("x", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.a = "y"                                  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del obj.b                                    # type: ignore[misc]


def test_fast_init_refuses_what_it_cannot_build() -> None:
    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class Hidden:
        a: int
        b: int = field(init=False, default=0)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int] = 0

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    for cls in (Factory, Post, KwOnly, Hidden, WithInitVar, NoSlots, NotFrozen, int):
        with pytest.raises(TypeError, match="fast_init"):
            fast_init(cls)


def test_the_per_message_classes_use_it() -> None:
    for cls in (Envelope, Send, LocalStep, MsgFrame):
        # the slots' setters (`_s0`, ...), not the dataclass's `object.__setattr__`
        assert "_s0" in cls.__init__.__code__.co_names, cls
        assert "__dataclass_builtins_object__" not in cls.__init__.__code__.co_names, cls
    env = Envelope(src="a", src_port="p", dst="b", dst_port="q", message=None)  # type: ignore
    assert (env.src, env.src_port, env.dst, env.dst_port, env.meta) == ("a", "p", "b", "q", ())
    step = LocalStep(1, (), (), ())
    assert step.choices == () and step == LocalStep(1, (), (), (), ())
