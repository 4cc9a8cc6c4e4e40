"""Suggested preconditions: when a handler's obligation is refuted, the condition on its inputs
under which it would hold, printed as Python the user can paste into the spec, in the place
where it means what the proof assumed (a guard, a port contract, a requires, an invariant).

For a loop-free body (and an unrolled `for`), the SSA translation of `prove.py` already states
the obligation's conclusion as a formula over the *inputs* of the step — the state fields
before it, the message's fields and sender, the action's argument, the ports' peer sets — so
the weakest precondition is the conclusion itself, read under the assumptions: no
substitution is left to do.  This module simplifies that formula modulo the obligation's
assumptions, prints it as a Python expression, and keeps it only if it is re-checked.

The pipeline (decisions):

1. **What is weakened.**  The obligation is `premise ∧ extra ⇒ goal`, where the premise is
   invariant ∧ requires ∧ guard ∧ message types ∧ port facts, and `extra` is the group's
   condition (the body completes; a send is reached).  The condition computed is `goal`
   simplified modulo `premise ∧ extra` — the weakest condition *on the steps the obligation
   is about*; a path that raises belongs to the `no-exception` obligation, and a send's path
   condition is not repeated (`if self.x > 0: send(...)` suggests the send's condition alone).
2. **Normal form.**  The goal is put in negation normal form and then in CNF (a conjunction of
   clauses, each a disjunction of literals).  On the way: `If` terms of non-Boolean sort are
   lifted out of atoms (`If(c, a, b) <= 9` becomes `c ∧ a <= 9 ∨ ¬c ∧ b <= 9`), Boolean
   equalities are expanded, and set atoms are decomposed element-wise where that is exact
   (`x ∈ A ∪ {y}` is `x ∈ A ∨ x = y`; `A ∪ {y} ⊆ B` is `A ⊆ B ∧ y ∈ B`), so that a
   conjunct the assumptions already give (`A ⊆ B` from the invariant) can be dropped.  An atom
   the assumptions decide is replaced by True or False *before* it is lifted (the ensures
   `self.s == (1 if m.x > 0 else -1 if m.x < 0 else 0)` after `self.s = sign(m.x)` is valid as
   a whole; lifting its four If-terms first would multiply clauses for nothing).  The
   lifting and the clause count are bounded (`MAX_LIFTS`, `MAX_CLAUSES`); past a bound the
   formula is printed as it is (conditional expressions included), without pruning.
3. **Simplified modulo the assumptions** with the verifier's own solver (which, when the
   suggestion is asked for, holds exactly `premise ∧ extra`): a literal the assumptions
   refute is removed from its clause; a clause containing a literal they imply is dropped;
   a clause implied by the assumptions and the other clauses is dropped; a literal that the
   rest of its clause makes redundant (under the assumptions and the other clauses) is
   removed; the last two are repeated until nothing changes.  Each step keeps the formula
   equivalent modulo the assumptions, so the result is still the weakest precondition.
   This is z3's `ctx-solver-simplify` done by hand, on clauses: the tactic (tried) works on
   one goal, the conjunction of assumptions and condition, so its result cannot be split
   back — on the peer-set bug it drops the invariant `prepared ⊆ peers` as implied by the
   condition and returns the condition whole — it leaves set atoms undecomposed, and it keeps
   a conjunct the others imply (`x >= -1` beside `x >= 0`).  A clause left empty means no
   precondition exists: every step the obligation covers breaks it.
4. **Printing** is this module's own (not sympy): a Z3 term is printed as the Python the
   translation understands, with Python's precedence.  Linear comparisons are printed in a
   natural form — terms with a positive coefficient on the left, the others on the right,
   the constant on the side without variables (`self.balance >= amount`, `self.count <= 2`,
   `x > y` rather than `x >= y + 1`), negations folded into the operator
   (`self.level <= 9`, never `Not(10 <= self.level)`), common factors divided out
   (`self.level <= 5`, not `2 * self.level <= 10`); a lower and an upper bound print as one
   chain (`-4 <= m.x <= 4`), two bounds that leave out one value as `!=`.  Enum members print
   as `EnumName.MEMBER` (the spec's module must bind that name to the class); `x != E.A and
   x != E.B` over all members but one as `x == E.C`; `E.A not in s or ...` over all members
   as `len(s) <= n`.  Booleans print as `and`/`or`/`not` (an `and` inside an `or` in
   parentheses), set membership as `x in s`, set operations as `|`, `&`, `-`, `<=`, a str's
   truth value as `s != ""`, a division as `//` or `%` only by a divisor that is a positive
   constant or that the assumptions make positive (there Z3's Euclidean division is
   Python's floor division).  The parameters are named as the handler or action names them
   (`lambda self, m: ...`, `lambda self, amount: ...`).
5. **Strengthening when needed.**  A literal with no Python form (a Euclidean division by a
   variable, a string's length, an unnamed peer) is dropped from its clause — that only
   strengthens the condition, so the result is sufficient but no longer the weakest (floor
   division's `m.d > 0` instead of `m.d > 0 or m.x % m.d == 0`).  If that empties a clause,
   or the text is longer than `MAX_CHARS`, the single literals (of the atoms met on the way,
   either polarity, shortest first) are tried as sufficient conditions too.
   **The weakest found.**  A condition the solver proves equivalent to the conclusion (under
   the assumptions) is the weakest there is, and is taken at once.  Otherwise every
   sufficient condition found (the strengthened formula, each single literal that passes the
   re-check) is kept unless another one found is strictly weaker (the solver decides
   implication under the assumptions), and when several incomparable ones remain, their
   disjunction — sufficient as well, and weaker than each — is suggested (if short enough):
   never the first sufficient condition met when a weaker one was found
   (`tests/fixtures/suggest/weakest.py`).
6. **Re-checked, always.**  The printed text is compiled into a real lambda (in the globals
   of the handler's module, so enum names resolve as in the spec), translated by
   `prove.py` exactly like a pasted `@requires`, and added to the same solver, which then
   must find: the assumptions with it satisfiable (else it is vacuous, not a suggestion),
   the group's extra condition still reachable, and the obligation's negation
   unsatisfiable (proved).  Finally the lambda runs concretely on the refutation's
   counterexample (through the kernel's runner) and must be false there.  Only then is it
   printed; otherwise: "no simple precondition found".  `Suggestion.exact` is a checked claim
   too: the same solver proves that the conclusion implies the condition under the
   assumptions (so it is the weakest); a strengthened condition says exact=False.
7. **Where it goes** — a condition is only useful where the engine that checks it gives it
   the meaning the proof assumed:
   * a condition that mentions neither the message nor the action's argument (only `self`'s
     fields and peer sets) is offered as a strengthening of the invariant,
     `invariant(lambda self: ...)` — provided it holds in every initial state of every
     instance of the class (evaluated concretely, with the real wiring) and this handler
     preserves it (proved: premise ∧ it ∧ the body completes ⇒ it after the body); other
     handlers' preservation of a suggested invariant is left to the next `assay verify` run;
   * otherwise, for an **action**, the guard: the action's `@action(...)` decorator with
     `when=old and condition` (the condition alone when, without the old guard, it implies
     it), its own text kept around the change — an action has no caller, so a `@requires`
     on one is a spec error; the guard is what every engine enables the action by;
   * for a **handler**, a condition on the message alone (not its sender) goes in the
     contract of the handler's port, the port's declaration with
     `where={Msg: lambda m: old and condition}` (the old contract always kept: it is about
     the message alone, whatever the handler assumes besides): the handler assumes it, the
     kernel refuses a delivery that breaks it (blaming the sender) and `verify` proves that
     what each connected sender's port guarantees implies it.  Not for a handler of any port, a
     message the component also sets as a timer (a timer meets no port) or sends on that
     port itself (the contract would bind those sends too), nor a contract not written in
     place as a dict display: those get a `@requires`;
   * a handler's condition that reads its own state is a `@requires(lambda self, m: ...)`
     (its senders must establish it: `verify` discharges its message part at every send
     site, see `verify.py`).
   The guard and the contract are re-checked once more as they will be pasted (the whole
   new lambda translated and proved, and false on the counterexample); `Suggestion.replaces`
   says which lines of which file the text replaces.
8. Suggestions are made for handler and action obligations only (not for initial states,
   restarts or connections), and not when an assumption could not be translated (the
   obligation could not then be proved).  The search is bounded: `MAX_CHECKS` solver calls
   and `BUDGET` seconds (at least the obligation timeout); past either, atoms stay
   undecided and clauses unpruned (the formula stays equivalent, only less simple) and the
   single-literal fallback stops.  An error inside the search (a Z3 exception, a term the
   translation refuses) gives "no simple precondition found", never a failed verification.
"""
from __future__ import annotations

import ast
import contextlib
import itertools
import linecache
import math
import re
import time
from dataclasses import dataclass, replace
from typing import Any

import z3

from assay.verifier import prove, source
from assay.verifier import types as vtypes
from assay.verifier.concrete import (
    Scenario,
    correlated,
    holds,
    initial_choices,
    initial_rows,
    real_wiring,
)
from assay.verifier.types import SelfObj, Unsupported, Val

NONE_FOUND = "no simple precondition found"
MAX_LIFTS = 64           # If-terms lifted out of atoms, per goal
MAX_CLAUSES = 256        # clauses of the CNF
MAX_CHECKS = 600         # solver calls while normalizing and pruning
MAX_CHARS = 200          # longest condition printed
MAX_ATOMS = 40           # single literals tried as a fallback
MAX_INITIAL = 4096       # initial states evaluated for an invariant suggestion
BUDGET = 2.0             # seconds for the search (at least the obligation timeout)


@dataclass(frozen=True)
class Suggestion:
    """What to add so that a refuted obligation is proved, re-checked; or none found."""

    kind: str                 # when | requires | where | invariant | none
    text: str                 # what to paste (see `replaces`), or NONE_FOUND
    condition: str = ""       # the Python condition alone
    lam: str = ""             # the lambda alone: the requires, the whole new guard or
    #                           contract, the invariant
    exact: bool = False       # proved the weakest: equivalent to the conclusion under the
    #                           assumptions (False: a sufficient, stronger condition)
    seconds: float = 0.0
    # (file, first line, last line) of what `text` replaces: the action's `@action(...)`
    # decorator (when), the port's declaration (where); None: `text` is added (a
    # `@requires` above the handler's def, an `invariant` in the class body)
    replaces: tuple[str, int, int] | None = None
    note: str = ""            # what else to know (where a contract must be guaranteed)

    @property
    def found(self) -> bool:
        return self.kind != "none"

    def to_json(self) -> dict[str, Any] | None:
        if not self.found:
            return None
        out: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.replaces is not None:
            out["replaces"] = {"file": self.replaces[0], "lines": list(self.replaces[1:])}
        if self.note:
            out["note"] = self.note
        return out


class Unprintable(Exception):
    """A term with no Python form the translation understands."""


class _TooBig(Exception):
    pass


# --- the inputs' Python names ---------------------------------------------------------------------

class _Vocab:
    """Python names of the Z3 constants of one step, and what each one is."""

    def __init__(self, comp: Any, t: Any) -> None:
        enc = comp.enc
        cls = comp.cls.__name__
        self.globals: dict[str, Any] = getattr(getattr(t.fn, "__func__", t.fn),
                                               "__globals__", {})
        self.names: dict[str, tuple[str, str]] = {}
        self.defs: list[Any] = []                  # fresh constants' definitions
        self.subst: list[tuple[Any, Any]] = []     # compound terms -> fresh constants
        for f, v in enc.pre.items():
            if isinstance(v, Val):
                self.names[v.e.decl().name()] = (f"self.{f}", "state")
        for p, penc in enc.ports.items():
            name = f"{cls}.{p}.peers"
            self.names[name] = (f"self.{p}.peers", "state")
            if not penc.many:        # If(connected, {peer}, {}): named by a fresh constant
                fresh = z3.Const(name, penc.peers.e.sort())
                self.subst.append((penc.peers.e, fresh))
                self.defs.append(fresh == penc.peers.e)
        self.params = ["self"]
        if t.handler is not None:
            mname = prove._param(t.fn, 1) or "m"
            self.params.append(mname)
            for n in vtypes.message_types(t.handler.message):
                self.names[f"m.{n}"] = (f"{mname}.{n}", "message")
            self.names["m.sender"] = (f"{mname}.sender", "sender")
        elif t.action is not None and t.action.over is not None:
            aname = prove._param(t.fn, 1) or "arg"
            self.params.append(aname)
            self.names["arg"] = (aname, "arg")
        self.enum_names: dict[str, str] = {}
        for ecls, (_, _, by_name) in vtypes._ENUMS.items():
            bound = self._bound_name(ecls)
            for cname, member in by_name.items():
                if bound is not None:
                    self.enum_names[cname] = f"{bound}.{member.name}"

    def _bound_name(self, cls: type) -> str | None:
        if self.globals.get(cls.__name__) is cls:
            return cls.__name__
        for k, v in self.globals.items():
            if v is cls and k.isidentifier():
                return k
        return None

    def const(self, e: Any) -> tuple[str, str]:
        name = e.decl().name()
        got = self.names.get(name)
        if got is not None:
            return got
        en = self.enum_names.get(name)
        if en is not None:
            return en, "const"
        raise Unprintable(f"the constant {name}")


# --- printing -------------------------------------------------------------------------------------

# Python precedence, loosest first
P_IF, P_OR, P_AND, P_NOT, P_CMP, P_BOR, P_BXOR, P_BAND, P_ADD, P_MUL, P_NEG, P_ATOM = range(12)
_FLIP = {"<=": ">=", ">=": "<=", "<": ">", ">": "<", "==": "==", "!=": "!="}
_NEG = {"<=": ">", ">=": "<", "<": ">=", ">": "<=", "==": "!=", "!=": "=="}
_CMP_OPS = {z3.Z3_OP_LE: "<=", z3.Z3_OP_GE: ">=", z3.Z3_OP_LT: "<", z3.Z3_OP_GT: ">",
            z3.Z3_OP_EQ: "==", z3.Z3_OP_DISTINCT: "!="}


def _kind(e: Any) -> int:
    return e.decl().kind() if z3.is_app(e) else -1


def _is_value(e: Any) -> bool:
    """A literal or an enum member (printed on the right of == and !=)."""
    return z3.is_int_value(e) or z3.is_string_value(e) or z3.is_true(e) or z3.is_false(e) \
        or (z3.is_const(e) and _kind(e) == z3.Z3_OP_DT_CONSTRUCTOR)


def _wrap(tp: tuple[str, int], prec: int) -> str:
    text, p = tp
    return text if p >= prec else f"({text})"


def _is_set(e: Any) -> bool:
    s = e.sort()
    return isinstance(s, z3.ArraySortRef) and s.range() == z3.BoolSort()


def _map_op(e: Any) -> str | None:
    """The Boolean operation of an array map (`Map(or, A, B)`), if it is one."""
    if _kind(e) != z3.Z3_OP_ARRAY_MAP:
        return None
    f = e.decl().params()[0]
    return {z3.Z3_OP_OR: "or", z3.Z3_OP_AND: "and", z3.Z3_OP_NOT: "not"}.get(f.kind())


class Printer:
    """Z3 terms as Python expressions; `positive(d)` says whether the assumptions make a
    divisor positive (then Z3's Euclidean division is Python's floor division)."""

    def __init__(self, vocab: _Vocab, positive: Any = None) -> None:
        self.v = vocab
        self.positive = positive
        self.uses: set[str] = set()

    # terms
    def term(self, e: Any) -> tuple[str, int]:
        if z3.is_true(e):
            return "True", P_ATOM
        if z3.is_false(e):
            return "False", P_ATOM
        if z3.is_int_value(e):
            n = e.as_long()
            return str(n), P_ATOM if n >= 0 else P_NEG
        if z3.is_string_value(e):
            r = repr(vtypes.str_of(e))
            if r.startswith("'") and '"' not in r:
                r = f'"{r[1:-1]}"'
            return r, P_ATOM
        k = _kind(e)
        if e.sort() == z3.BoolSort() and (k in _CMP_OPS or k in (
                z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_NOT, z3.Z3_OP_IMPLIES, z3.Z3_OP_SELECT,
                z3.Z3_OP_SET_SUBSET, z3.Z3_OP_XOR, z3.Z3_OP_ITE)):
            return self.formula(e)
        if z3.is_const(e) and k in (z3.Z3_OP_UNINTERPRETED, z3.Z3_OP_DT_CONSTRUCTOR):
            text, what = self.v.const(e)
            self.uses.add(what)
            return text, P_ATOM
        if e.sort() == z3.IntSort() and k in (z3.Z3_OP_ADD, z3.Z3_OP_SUB, z3.Z3_OP_MUL,
                                              z3.Z3_OP_UMINUS):
            terms, c = _linear(e)
            return self.sum(terms, c)
        if k in (z3.Z3_OP_IDIV, z3.Z3_OP_MOD):
            d = e.arg(1)
            if not (z3.is_int_value(d) and d.as_long() > 0) and \
                    not (self.positive is not None and self.positive(d)):
                raise Unprintable("a division by a divisor not known to be positive")
            op = "//" if k == z3.Z3_OP_IDIV else "%"
            return f"{_wrap(self.term(e.arg(0)), P_MUL)} {op} {_wrap(self.term(d), P_NEG)}", \
                P_MUL
        if k == z3.Z3_OP_ITE:
            c, a, b = e.arg(0), e.arg(1), e.arg(2)
            return (f"{_wrap(self.term(a), P_OR)} if {_wrap(self.formula(c), P_OR)} else "
                    f"{_wrap(self.term(b), P_IF)}", P_IF)
        if k == z3.Z3_OP_SEQ_CONCAT:
            return " + ".join(_wrap(self.term(a), P_MUL) for a in e.children()), P_ADD
        if _is_set(e):
            return self.set_term(e)
        raise Unprintable(f"the term {e}")

    def set_term(self, e: Any) -> tuple[str, int]:
        k = _kind(e)
        mop = _map_op(e)
        if k == z3.Z3_OP_CONST_ARRAY and z3.is_false(e.arg(0)):
            return "frozenset()", P_ATOM
        if k == z3.Z3_OP_STORE:
            base, x, val = e.arg(0), e.arg(1), e.arg(2)
            xs = self.term(x)[0]
            if z3.is_true(val):
                if _kind(base) == z3.Z3_OP_CONST_ARRAY and z3.is_false(base.arg(0)):
                    return "{" + xs + "}", P_ATOM
                return f"{_wrap(self.set_term(base), P_BOR)} | {{{xs}}}", P_BOR
            if z3.is_false(val):
                return f"{_wrap(self.set_term(base), P_ADD)} - {{{xs}}}", P_ADD
        if k == z3.Z3_OP_SET_UNION or mop == "or":
            return " | ".join(_wrap(self.set_term(a), P_BOR) for a in e.children()), P_BOR
        if (k == z3.Z3_OP_SET_INTERSECT or mop == "and") and e.num_args() == 2:
            a, b = e.arg(0), e.arg(1)
            if _map_op(b) == "not":            # A & ~B is A - B
                return (f"{_wrap(self.set_term(a), P_ADD)} - "
                        f"{_wrap(self.set_term(b.arg(0)), P_MUL)}", P_ADD)
            return (f"{_wrap(self.set_term(a), P_BAND)} & "
                    f"{_wrap(self.set_term(b), P_BAND + 1)}", P_BAND)
        if k == z3.Z3_OP_SET_DIFFERENCE:
            return (f"{_wrap(self.set_term(e.arg(0)), P_ADD)} - "
                    f"{_wrap(self.set_term(e.arg(1)), P_MUL)}", P_ADD)
        if z3.is_const(e) and k == z3.Z3_OP_UNINTERPRETED:
            text, what = self.v.const(e)
            self.uses.add(what)
            return text, P_ATOM
        if k == z3.Z3_OP_ITE:
            return self.term(e)
        raise Unprintable(f"the set {e}")

    def sum(self, terms: list[tuple[Any, int]], c: int) -> tuple[str, int]:
        parts: list[str] = []
        for t, k in terms:
            ts = self.mono(t, abs(k))
            if not parts:
                parts.append(ts if k > 0 else f"-{ts}")
            else:
                parts.append(("+ " if k > 0 else "- ") + ts)
        if c or not parts:
            if not parts:
                return str(c), P_ATOM if c >= 0 else P_NEG
            parts.append(("+ " if c > 0 else "- ") + str(abs(c)))
        if len(parts) == 1:
            one = parts[0]
            return one, P_NEG if one.startswith("-") else P_MUL if " " in one else P_ATOM
        return " ".join(parts), P_ADD

    def mono(self, t: Any, k: int) -> str:
        """`k * t` for a positive k, as an operand of + and -."""
        if _kind(t) == z3.Z3_OP_MUL:
            ts = " * ".join(_wrap(self.term(a), P_MUL + 1) for a in t.children())
        else:
            ts = _wrap(self.term(t), P_MUL if k == 1 else P_MUL + 1)
        return ts if k == 1 else f"{k} * {ts}"

    # formulas
    def formula(self, e: Any, pos: bool = True) -> tuple[str, int]:
        k = _kind(e)
        if z3.is_true(e) or z3.is_false(e):
            return ("True" if z3.is_true(e) == pos else "False"), P_ATOM
        if k == z3.Z3_OP_NOT:
            return self.formula(e.arg(0), not pos)
        if k in (z3.Z3_OP_AND, z3.Z3_OP_OR):
            is_and = (k == z3.Z3_OP_AND) == pos
            prec = P_AND if is_and else P_OR
            # `and` inside `or` is parenthesized too, for the reader
            parts = [_wrap(self.formula(a, pos), P_AND + 1) for a in e.children()]
            return (" and " if is_and else " or ").join(parts), prec
        if k == z3.Z3_OP_IMPLIES:
            return self.formula(z3.Or(z3.Not(e.arg(0)), e.arg(1)), pos)
        if k == z3.Z3_OP_ITE:
            c, a, b = e.arg(0), e.arg(1), e.arg(2)
            return (f"{_wrap(self.formula(a, pos), P_OR)} if {_wrap(self.formula(c), P_OR)} "
                    f"else {_wrap(self.formula(b, pos), P_IF)}", P_IF)
        return self.literal(e, pos)

    def literal(self, e: Any, pos: bool) -> tuple[str, int]:
        k = _kind(e)
        if k in _CMP_OPS and e.num_args() == 2:
            op = _CMP_OPS[k]
            if not pos:
                op = _NEG[op]
            a, b = e.arg(0), e.arg(1)
            if a.sort() == z3.IntSort():
                return self.compare(a, b, op)
            if a.sort() == z3.BoolSort():
                return (f"{_wrap(self.formula(a), P_CMP + 1)} {op} "
                        f"{_wrap(self.formula(b), P_CMP + 1)}", P_CMP)
            if op in ("==", "!="):
                if _is_value(a) and not _is_value(b):
                    a, b = b, a                      # m.color != Color.BLUE
                return (f"{_wrap(self.term(a), P_CMP + 1)} {op} "
                        f"{_wrap(self.term(b), P_CMP + 1)}", P_CMP)
        if k == z3.Z3_OP_SELECT and _is_set(e.arg(0)):
            op = "in" if pos else "not in"
            return (f"{_wrap(self.term(e.arg(1)), P_CMP + 1)} {op} "
                    f"{_wrap(self.set_term(e.arg(0)), P_CMP + 1)}", P_CMP)
        if k == z3.Z3_OP_SET_SUBSET:
            text = (f"{_wrap(self.set_term(e.arg(0)), P_CMP + 1)} <= "
                    f"{_wrap(self.set_term(e.arg(1)), P_CMP + 1)}")
            return (text, P_CMP) if pos else (f"not {text}", P_NOT)
        if z3.is_const(e) and e.sort() == z3.BoolSort():
            text, what = self.v.const(e)
            self.uses.add(what)
            return (text, P_ATOM) if pos else (f"not {text}", P_NOT)
        raise Unprintable(f"the condition {e}")

    def compare(self, a: Any, b: Any, op: str) -> tuple[str, int]:
        """An integer comparison in its natural form."""
        ta, ca = _linear(a)
        tb, cb = _linear(b)
        terms = _combine(ta + [(t, -k) for t, k in tb])
        c = ca - cb                                  # sum(terms) + c  op  0
        if op == "<":
            op, c = "<=", c + 1                      # x < 0  <=>  x + 1 <= 0
        elif op == ">":
            op, c = ">=", c - 1
        g = math.gcd(*(abs(k) for _, k in terms)) if terms else 1
        if g > 1:                                    # 2 * x <= 10  <=>  x <= 5
            if op in ("==", "!=") and c % g:
                return ("False" if op == "==" else "True"), P_ATOM
            terms = [(t, k // g) for t, k in terms]
            c = {"<=": -((-c) // g), ">=": c // g}.get(op, c // g)
        pos = [(t, k) for t, k in terms if k > 0]
        neg = [(t, -k) for t, k in terms if k < 0]
        if not pos and not neg:
            holds = {"<=": c <= 0, ">=": c >= 0, "==": c == 0, "!=": c != 0}[op]
            return ("True" if holds else "False"), P_ATOM
        if not pos:                                  # c op sum(neg)  ->  sum(neg) flip c
            left, right, k, op = neg, [], c, _FLIP[op]
        else:                                        # sum(pos) op sum(neg) - c
            left, right, k = pos, neg, -c
        if right and self._fields(right) > self._fields(left):
            left, right, k, op = right, left, -k, _FLIP[op]     # the state on the left
        if op == ">=" and k == 1:
            op, k = ">", 0
        elif op == "<=" and k == -1:
            op, k = "<", 0
        if len(left) == 1 and _kind(left[0][0]) == z3.Z3_OP_SEQ_LENGTH:
            return self._emptiness(left, right, op, k)
        lhs = self.sum(left, 0)
        rhs = self.sum(right, k)
        return f"{_wrap(lhs, P_CMP + 1)} {op} {_wrap(rhs, P_CMP + 1)}", P_CMP

    def _emptiness(self, left: list, right: list, op: str, k: int) -> tuple[str, int]:
        """`len(s) > 0` of a str (no len() in the translation) as `s != ""`."""
        (t, n), = left
        if right or n != 1:
            raise Unprintable("the length of a str")
        if (op, k) in ((">", 0), ("!=", 0)):
            op = "!="
        elif (op, k) in (("<=", 0), ("==", 0)):
            op = "=="
        else:
            raise Unprintable("the length of a str")
        return f"{_wrap(self.term(t.arg(0)), P_CMP + 1)} {op} \"\"", P_CMP

    def _fields(self, terms: list[tuple[Any, int]]) -> int:
        n = 0
        for t, _ in terms:
            with contextlib.suppress(Unprintable):
                n += self.term(t)[0].startswith("self.")
        return n


def _linear(e: Any) -> tuple[list[tuple[Any, int]], int]:
    """An integer term as (non-constant terms with coefficients, constant)."""
    if z3.is_int_value(e):
        return [], e.as_long()
    k = _kind(e)
    if k == z3.Z3_OP_ADD:
        terms: list[tuple[Any, int]] = []
        c = 0
        for a in e.children():
            t, ca = _linear(a)
            terms += t
            c += ca
        return _combine(terms), c
    if k == z3.Z3_OP_SUB:
        t0, c0 = _linear(e.arg(0))
        for a in e.children()[1:]:
            t, ca = _linear(a)
            t0 = t0 + [(x, -n) for x, n in t]
            c0 -= ca
        return _combine(t0), c0
    if k == z3.Z3_OP_UMINUS:
        t, c = _linear(e.arg(0))
        return [(x, -n) for x, n in t], -c
    if k == z3.Z3_OP_MUL:
        nums = [a for a in e.children() if z3.is_int_value(a)]
        rest = [a for a in e.children() if not z3.is_int_value(a)]
        f = 1
        for n in nums:
            f *= n.as_long()
        if len(rest) == 1:
            t, c = _linear(rest[0])
            return [(x, n * f) for x, n in t], c * f
        if not rest:
            return [], f
        prod = rest[0] if len(rest) == 1 else z3.Product(*rest)
        return ([(prod, f)] if f else []), 0
    return [(e, 1)], 0


def _combine(terms: list[tuple[Any, int]]) -> list[tuple[Any, int]]:
    out: dict[int, list[Any]] = {}
    for t, k in terms:
        got = out.get(t.get_id())
        if got is None:
            out[t.get_id()] = [t, k]
        else:
            got[1] += k
    return [(t, k) for t, k in out.values() if k != 0]


# --- normal forms ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Lit:
    atom: Any
    pos: bool

    @property
    def key(self) -> tuple[int, bool]:
        return self.atom.get_id(), self.pos

    def expr(self) -> Any:
        return self.atom if self.pos else z3.Not(self.atom)


class _Normalizer:
    """Negation normal form, then CNF, of a goal: If-terms lifted, set atoms decomposed, and
    atoms the context decides replaced by True or False (before they are lifted: an atom
    such as `sign(x) == (1 if x > 0 else ...)` is valid as a whole, and lifting it first
    would multiply clauses for nothing)."""

    def __init__(self, ctx: _Ctx | None = None) -> None:
        self.ctx = ctx
        self.lifts = 0
        self.atoms: dict[int, Any] = {}
        self.decided: dict[int, tuple[Any, bool | None]] = {}   # id -> (atom, value)

    def cnf(self, e: Any) -> list[list[_Lit]]:
        clauses = self._cnf(e, True, 0)
        out: list[list[_Lit]] = []
        seen: set[frozenset] = set()
        for c in clauses:
            keys = {lit.key for lit in c}
            if any((a, not p) in keys for a, p in keys):
                continue                             # a tautology
            uniq = list({lit.key: lit for lit in c}.values())
            fk = frozenset(lit.key for lit in uniq)
            if fk not in seen:
                seen.add(fk)
                out.append(uniq)
        # subsumption: a clause containing another is implied by it
        out.sort(key=len)
        kept: list[list[_Lit]] = []
        for c in out:
            ck = {lit.key for lit in c}
            if not any({lit.key for lit in d} <= ck for d in kept):
                kept.append(c)
        return kept

    def _cnf(self, e: Any, pos: bool, depth: int) -> list[list[_Lit]]:
        if depth > 200:
            raise _TooBig
        k = _kind(e)
        if z3.is_true(e) or z3.is_false(e):
            return [] if z3.is_true(e) == pos else [[]]
        if k == z3.Z3_OP_NOT:
            return self._cnf(e.arg(0), not pos, depth + 1)
        if k in (z3.Z3_OP_AND, z3.Z3_OP_OR):
            if (k == z3.Z3_OP_AND) == pos:
                return self._and([self._cnf(a, pos, depth + 1) for a in e.children()])
            return self._or([self._cnf(a, pos, depth + 1) for a in e.children()])
        if k == z3.Z3_OP_IMPLIES:
            return self._cnf(z3.Or(z3.Not(e.arg(0)), e.arg(1)), pos, depth + 1)
        if k == z3.Z3_OP_ITE and e.sort() == z3.BoolSort():
            c, a, b = e.arg(0), e.arg(1), e.arg(2)
            f = z3.And(z3.Or(z3.Not(c), a), z3.Or(c, b))
            return self._cnf(f, pos, depth + 1)
        if k in (z3.Z3_OP_EQ, z3.Z3_OP_XOR) and e.arg(0).sort() == z3.BoolSort():
            a, b = e.arg(0), e.arg(1)
            same = (k == z3.Z3_OP_EQ) == pos
            f = z3.And(z3.Or(z3.Not(a), b), z3.Or(a, z3.Not(b))) if same else \
                z3.And(z3.Or(a, b), z3.Or(z3.Not(a), z3.Not(b)))
            return self._cnf(f, True, depth + 1)
        if k == z3.Z3_OP_DISTINCT:
            args = e.children()
            pairs = [z3.Not(x == y) for x, y in itertools.combinations(args, 2)]
            return self._cnf(z3.And(pairs) if len(pairs) > 1 else pairs[0], pos, depth + 1)
        known = self.decide(e)
        if known is not None:
            return [] if known == pos else [[]]
        r = self.rewrite_atom(e)
        if r is not None:
            return self._cnf(r, pos, depth + 1)
        self.atoms[e.get_id()] = e
        return [[_Lit(e, pos)]]

    def _and(self, parts: list[list[list[_Lit]]]) -> list[list[_Lit]]:
        out = [c for p in parts for c in p]
        if len(out) > MAX_CLAUSES:
            raise _TooBig
        return out

    def _or(self, parts: list[list[list[_Lit]]]) -> list[list[_Lit]]:
        out: list[list[_Lit]] = [[]]
        for p in parts:
            out = [a + b for a in out for b in p]
            if len(out) > MAX_CLAUSES:
                raise _TooBig
        return out

    def decide(self, e: Any) -> bool | None:
        """True or False when the context decides an atom, else None."""
        if self.ctx is None:
            return None
        key = e.get_id()             # the atom is kept alive with it: ids are reused
        if key not in self.decided:
            self.decided[key] = (e, True if self.ctx.unsat(z3.Not(e)) else
                                 False if self.ctx.unsat(e) else None)
        return self.decided[key][1]

    def rewrite_atom(self, e: Any) -> Any:
        """A simpler formula for an atom, or None when it is final."""
        k = _kind(e)
        if k == z3.Z3_OP_SELECT and _is_set(e.arg(0)):
            got = _member(e.arg(1), e.arg(0))
            if got is not None:
                return got
        if k == z3.Z3_OP_SET_SUBSET:
            got = _subset(e.arg(0), e.arg(1))
            if got is not None:
                return got
        ite = _find_ite(e)
        if ite is not None and self.lifts < MAX_LIFTS:
            self.lifts += 1
            c, a, b = ite.arg(0), ite.arg(1), ite.arg(2)
            return z3.If(c, z3.substitute(e, (ite, a)), z3.substitute(e, (ite, b)))
        s = z3.simplify(e)
        if z3.is_true(s) or z3.is_false(s):
            return s
        if _kind(s) in (z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_NOT, z3.Z3_OP_IMPLIES) \
                and not s.eq(e):
            return s
        return None


def _empty(s: Any) -> bool:
    return _kind(s) == z3.Z3_OP_CONST_ARRAY and z3.is_false(s.arg(0))


def _member(x: Any, s: Any) -> Any:
    """`x ∈ s` decomposed one level, or None."""
    k = _kind(s)
    mop = _map_op(s)
    if k == z3.Z3_OP_CONST_ARRAY:
        return s.arg(0)
    if k == z3.Z3_OP_STORE:
        return z3.If(x == s.arg(1), s.arg(2), z3.IsMember(x, s.arg(0)))
    if k == z3.Z3_OP_SET_UNION or mop == "or":
        return z3.Or([z3.IsMember(x, a) for a in s.children()])
    if k == z3.Z3_OP_SET_INTERSECT or mop == "and":
        return z3.And([z3.IsMember(x, a) for a in s.children()])
    if k == z3.Z3_OP_SET_DIFFERENCE:
        return z3.And(z3.IsMember(x, s.arg(0)), z3.Not(z3.IsMember(x, s.arg(1))))
    if k == z3.Z3_OP_SET_COMPLEMENT or mop == "not":
        return z3.Not(z3.IsMember(x, s.arg(0)))
    if k == z3.Z3_OP_ITE:
        return z3.If(s.arg(0), z3.IsMember(x, s.arg(1)), z3.IsMember(x, s.arg(2)))
    return None


def _subset(a: Any, b: Any) -> Any:
    """`a ⊆ b` decomposed one level where that is exact, or None."""
    k = _kind(a)
    if _empty(a):
        return z3.BoolVal(True)
    if k == z3.Z3_OP_SET_UNION or _map_op(a) == "or":
        return z3.And([z3.IsSubset(x, b) for x in a.children()])
    if k == z3.Z3_OP_STORE and z3.is_true(a.arg(2)):
        return z3.And(z3.IsMember(a.arg(1), b), z3.IsSubset(a.arg(0), b))
    if k == z3.Z3_OP_ITE:
        return z3.If(a.arg(0), z3.IsSubset(a.arg(1), b), z3.IsSubset(a.arg(2), b))
    kb = _kind(b)
    if kb == z3.Z3_OP_SET_INTERSECT or _map_op(b) == "and":
        return z3.And([z3.IsSubset(a, x) for x in b.children()])
    if kb == z3.Z3_OP_ITE:
        return z3.If(b.arg(0), z3.IsSubset(a, b.arg(1)), z3.IsSubset(a, b.arg(2)))
    return None


def _find_ite(e: Any) -> Any:
    """The first If-term of non-Boolean sort inside an atom, or None."""
    todo = list(e.children())
    seen: dict[int, Any] = {}                 # the terms are kept alive: ids are reused
    while todo:
        x = todo.pop(0)
        if not z3.is_app(x) or x.get_id() in seen:
            continue
        seen[x.get_id()] = x
        if _kind(x) == z3.Z3_OP_ITE and x.sort() != z3.BoolSort():
            return x
        todo.extend(x.children())
    return None


# --- simplification modulo the assumptions --------------------------------------------------------

class _Ctx:
    """The verifier's solver, holding premise ∧ extra; counts and bounds the checks."""

    def __init__(self, solver: z3.Solver, deadline: float) -> None:
        self.s = solver
        self.deadline = deadline
        self.checks = 0

    def live(self) -> bool:
        return self.checks < MAX_CHECKS and time.perf_counter() < self.deadline

    def unsat(self, *fs: Any) -> bool:
        """The context with `fs` is unsatisfiable (False when undecided or out of budget)."""
        if not self.live():
            return False
        self.checks += 1
        self.s.push()
        try:
            self.s.add(*fs)
            return self.s.check() == z3.unsat
        finally:
            self.s.pop()


def _clause(c: list[_Lit]) -> Any:
    return z3.Or([lit.expr() for lit in c]) if c else z3.BoolVal(False)


def _prune(clauses: list[list[_Lit]], ctx: _Ctx) -> list[list[_Lit]] | None:
    """The clauses simplified modulo the context, equivalently; None: they cannot hold."""
    lits = {lit.key: lit for c in clauses for lit in c}
    false = {k for k, lit in lits.items() if ctx.unsat(lit.expr())}
    true = {k for k, lit in lits.items() if k not in false and ctx.unsat(z3.Not(lit.expr()))}
    out = []
    for c in clauses:
        if any(lit.key in true for lit in c):
            continue
        c = [lit for lit in c if lit.key not in false]
        if not c:
            return None
        out.append(c)
    changed = True
    while changed and ctx.live():             # until neither step changes anything
        changed = False
        # a clause the others (and the context) imply is dropped; longest first
        out.sort(key=len, reverse=True)
        i = 0
        while i < len(out):
            others = [_clause(d) for j, d in enumerate(out) if j != i]
            if ctx.unsat(*others, z3.Not(_clause(out[i]))):
                out.pop(i)
                changed = True
            else:
                i += 1
        # a literal the rest of its clause makes redundant is removed
        for i, c in enumerate(out):
            others = [_clause(d) for j, d in enumerate(out) if j != i]
            j = 0
            while len(c) > 1 and j < len(c):
                rest = c[:j] + c[j + 1:]
                if ctx.unsat(*others, c[j].expr(), z3.Not(_clause(rest))):
                    c = rest
                    out[i] = c
                    changed = True
                else:
                    j += 1
    out.sort(key=len)
    return out


# --- the entry point ------------------------------------------------------------------------------

def suggest(comp: Any, g: Any, t: Any, premise: list[Any], cex: Any) -> Suggestion:
    """A re-checked precondition (or invariant) under which the refuted goal `g` of handler or
    action `t` of component `comp` (a `verify._Component`) would be proved.  `comp.solver`
    holds the obligation's premise ∧ extra (and holds it again on return); `premise` is the
    list of the premise's terms; `cex` the confirmed counterexample."""
    t0 = time.perf_counter()
    try:
        return _suggest(comp, g, t, premise, cex, t0)
    except (z3.Z3Exception, Unsupported, Unprintable, _TooBig, RecursionError):
        return Suggestion("none", NONE_FOUND, seconds=time.perf_counter() - t0)


def _suggest(comp: Any, g: Any, t: Any, premise: list[Any], cex: Any, t0: float
             ) -> Suggestion:
    vocab = _Vocab(comp, t)
    ctx = _Ctx(comp.solver, t0 + max(BUDGET, comp.timeout))
    goal = z3.substitute(g.goal, *vocab.subst) if vocab.subst else g.goal

    def positive(d: Any) -> bool:
        return ctx.unsat(d <= 0)

    def none() -> Suggestion:
        return Suggestion("none", NONE_FOUND, seconds=time.perf_counter() - t0)

    def done(found: _Found) -> Suggestion:
        sug = _place(comp, g, t, premise, cex, vocab, found)
        return replace(sug, seconds=time.perf_counter() - t0)

    candidates: list[tuple[str, set[str], bool]] = []     # (condition, what it uses, exact)
    norm = _Normalizer(ctx)
    s = comp.solver
    s.push()
    try:
        s.add(*vocab.defs)
        try:
            clauses = _prune(norm.cnf(goal), ctx)
            if clauses is None:               # the goal cannot hold under the assumptions
                return none()
            got = _print_clauses(clauses, vocab, positive) if clauses else None
            if got is not None:
                candidates.append(got)
        except _TooBig:                       # printed as it is, without pruning
            with contextlib.suppress(Unprintable):
                pr = Printer(vocab, positive)
                candidates.append((pr.formula(z3.simplify(goal))[0], pr.uses, True))
    finally:
        s.pop()
    found: list[_Found] = []                  # sufficient conditions, re-checked
    for text, uses, _ in candidates:
        if len(text) <= MAX_CHARS:
            f = _sufficient(comp, g, t, cex, vocab, text, uses)
            if f is not None:
                if _implies(s, g.goal, f.cond):       # the weakest there is: done
                    return done(replace(f, exact=True))
                found.append(f)
    # single literals as sufficient conditions; then the weakest of all that were found
    singles: dict[str, set[str]] = {}
    for a in list(norm.atoms.values())[:MAX_ATOMS]:
        for pos in (True, False):
            with contextlib.suppress(Unprintable):
                pr = Printer(vocab, positive)
                singles.setdefault(pr.formula(a, pos)[0], pr.uses)
    for text, uses in sorted(singles.items(), key=lambda x: len(x[0])):
        if time.perf_counter() > ctx.deadline:
            break
        if any(f.text == text for f in found):
            continue
        f = _sufficient(comp, g, t, cex, vocab, text, uses)
        if f is not None:
            found.append(f)
    best = _weakest(comp, g, t, cex, vocab, found)
    if best is None:
        return none()
    return done(replace(best, exact=_implies(s, g.goal, best.cond)))


@dataclass(frozen=True)
class _Found:
    """A printed condition that proves the obligation, re-checked."""

    text: str
    uses: frozenset[str]
    cond: Any                          # its translation
    exact: bool = False


def _implies(s: z3.Solver, a: Any, b: Any) -> bool:
    """Under what `s` holds, `a` implies `b` (False when undecided)."""
    return bool(_check(s, a, z3.Not(b)) == z3.unsat)


def _weakest(comp: Any, g: Any, t: Any, cex: Any, vocab: _Vocab, found: list[_Found]
             ) -> _Found | None:
    """The weakest of the sufficient conditions found: those no other one is strictly weaker
    than; if several remain, their disjunction (sufficient too), when it is short enough."""
    s = comp.solver
    kept: list[_Found] = []
    for f in sorted(found, key=lambda f: len(f.text)):
        if any(_implies(s, f.cond, k.cond) for k in kept):
            continue                    # no weaker than one already kept
        kept = [k for k in kept if not _implies(s, k.cond, f.cond)] + [f]
    if len(kept) > 1:
        text = " or ".join(_operand(k.text, ast.And) for k in kept)
        if len(text) <= MAX_CHARS:
            uses = frozenset().union(*(k.uses for k in kept))
            either = _sufficient(comp, g, t, cex, vocab, text, uses)
            if either is not None:
                return either
    return kept[0] if kept else None


def _print_clauses(clauses: list[list[_Lit]], vocab: _Vocab, positive: Any
                   ) -> tuple[str, set[str], bool] | None:
    """The clauses as Python; literals with no Python form are dropped (a strengthening)."""
    pr = Printer(vocab, positive)
    exact = True
    clauses, texts = _only_member(clauses, pr)
    for c in clauses:
        c, parts = _cardinality(c, pr)
        for lit in c:
            try:
                parts.append(pr.formula(lit.atom, lit.pos))
            except Unprintable:
                exact = False
        if not parts:
            return None
        parts = _merge_bounds(parts)
        if len(parts) == 1:
            texts.append(parts[0])
        else:
            texts.append((" or ".join(_wrap(p, P_AND + 1) for p in parts), P_OR))
    texts = _chain_bounds(list(dict.fromkeys(texts)))
    if len(texts) == 1:
        return texts[0][0], pr.uses, exact
    return " and ".join(_wrap(p, P_AND + 1) for p in texts), pr.uses, exact


def _only_member(clauses: list[list[_Lit]], pr: Printer
                 ) -> tuple[list[list[_Lit]], list[tuple[str, int]]]:
    """`x != E.A and x != E.B` over every member of the enum E but one is `x == E.C`."""
    groups: dict[int, tuple[Any, dict[int, Any]]] = {}
    for c in clauses:
        if len(c) != 1 or c[0].pos or _kind(c[0].atom) != z3.Z3_OP_EQ:
            continue
        a, b = c[0].atom.arg(0), c[0].atom.arg(1)
        if _is_value(a):
            a, b = b, a
        if _kind(b) == z3.Z3_OP_DT_CONSTRUCTOR and z3.is_const(b) and not _is_value(a):
            groups.setdefault(a.get_id(), (a, {}))[1][b.get_id()] = c[0].key
    texts: list[tuple[str, int]] = []
    drop: set[tuple[int, bool]] = set()
    for x, out in groups.values():
        sort = x.sort()
        if not isinstance(sort, z3.DatatypeSortRef) or len(out) != sort.num_constructors() - 1:
            continue
        rest = [k() for k in (sort.constructor(i) for i in range(sort.num_constructors()))
                if k().get_id() not in out]
        if len(rest) != 1:
            continue
        try:
            texts.append((f"{_wrap(pr.term(x), P_CMP + 1)} == {pr.term(rest[0])[0]}", P_CMP))
        except Unprintable:
            continue
        drop |= set(out.values())
    return [c for c in clauses if not (len(c) == 1 and c[0].key in drop)], texts


def _chain_bounds(texts: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """`x >= a and x <= b` is `a <= x <= b` (and `x == a` when a == b)."""
    pat = re.compile(r"^(.*) (<=|>=|<|>) (-?\d+)$")
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    for text, _ in texts:
        m = pat.match(text)
        if m and " or " not in text:
            lhs, op, k = m.group(1), m.group(2), int(m.group(3))
            if op in (">=", ">"):
                lo[lhs] = max(lo.get(lhs, k), k + (op == ">"))
            else:
                hi[lhs] = min(hi.get(lhs, k), k - (op == "<"))
    out: list[tuple[str, int]] = []
    done: set[str] = set()
    for text, p in texts:
        m = pat.match(text)
        lhs = m.group(1) if m and " or " not in text else None
        if lhs is None or lhs not in lo or lhs not in hi:
            out.append((text, p))
        elif lhs not in done:
            done.add(lhs)
            a, b = lo[lhs], hi[lhs]
            out.append((f"{lhs} == {a}" if a == b else f"{a} <= {lhs} <= {b}", P_CMP))
    return out


def _cardinality(c: list[_Lit], pr: Printer) -> tuple[list[_Lit], list[tuple[str, int]]]:
    """In a clause, `E.A not in s or E.B not in s or ...` over every member of the enum E is
    `len(s) < len(E)`; `E.A in s or ...` over every member is `len(s) > 0`."""
    groups: dict[tuple[int, bool], list[_Lit]] = {}
    for lit in c:
        a = lit.atom
        if _kind(a) == z3.Z3_OP_SELECT and _is_set(a.arg(0)) and z3.is_const(a.arg(1)) \
                and _kind(a.arg(1)) == z3.Z3_OP_DT_CONSTRUCTOR:
            groups.setdefault((a.arg(0).get_id(), lit.pos), []).append(lit)
    parts: list[tuple[str, int]] = []
    drop: set[tuple[int, bool]] = set()
    for (_, pos), lits in groups.items():
        s = lits[0].atom.arg(0)
        dom = s.sort().domain()
        n = dom.num_constructors() if isinstance(dom, z3.DatatypeSortRef) else 0
        if n < 2 or len({lit.atom.arg(1).get_id() for lit in lits}) != n:
            continue
        try:
            st = pr.set_term(s)[0]
        except Unprintable:
            continue
        parts.append((f"len({st}) > 0" if pos else f"len({st}) <= {n - 1}", P_CMP))
        drop |= {lit.key for lit in lits}
    return [lit for lit in c if lit.key not in drop], parts


def _merge_bounds(parts: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """`x <= a or x >= a + 2` is `x != a + 1`."""
    pat = re.compile(r"^(.*) (<=|>=|<|>) (-?\d+)$")
    bounds: dict[str, dict[str, int]] = {}
    for text, _ in parts:
        m = pat.match(text)
        if m:
            lhs, op, k = m.group(1), m.group(2), int(m.group(3))
            if op == "<":
                op, k = "<=", k - 1
            elif op == ">":
                op, k = ">=", k + 1
            bounds.setdefault(lhs, {})[op] = k
    for lhs, b in bounds.items():
        if "<=" in b and ">=" in b and b[">="] == b["<="] + 2:
            keep = [p for p in parts if not (pat.match(p[0]) and
                                             pat.match(p[0]).group(1) == lhs)]  # type: ignore
            return [*keep, (f"{lhs} != {b['<='] + 1}", P_CMP)]
    return parts


# --- re-checking a printed condition --------------------------------------------------------------

_COUNTER = itertools.count()


def _translate(enc: Any, text: str, params: list[str], glob: dict[str, Any],
               arg_lists: list[list[Any]]) -> tuple[Any, list[Any]]:
    """A real lambda of the printed text (compiled in the spec module's globals, so names
    resolve as they would in the spec), and its translation for each argument list."""
    src = f"lambda {', '.join(params)}: {text}\n"
    name = f"<assay-suggestion-{next(_COUNTER)}>"
    linecache.cache[name] = (len(src), None, [src], name)     # where prove finds sources
    try:
        fn = eval(compile(src, name, "eval"), glob)  # noqa: S307 -- our own printed text
        return fn, [enc.predicate(fn, args) for args in arg_lists]
    finally:
        linecache.cache.pop(name, None)


def _check(s: z3.Solver, *fs: Any) -> Any:
    s.push()
    try:
        s.add(*fs)
        return s.check()
    finally:
        s.pop()


def _sufficient(comp: Any, g: Any, t: Any, cex: Any, vocab: _Vocab, text: str,
                uses: set[str] | frozenset[str]) -> _Found | None:
    """The printed condition, if, as a precondition of the step, it proves the obligation
    without making it vacuous and is false on the counterexample."""
    enc, info, glob = comp.enc, comp.info, vocab.globals
    args: list[Any] = list(t.args or [])
    try:
        fn, (cond,) = _translate(enc, text, vocab.params, glob,
                                 [[SelfObj(dict(enc.pre)), *args]])
    except (Unsupported, SyntaxError, NameError):
        return None
    if not _holds_where_needed(comp, g, cond):
        return None
    if not _false_on(info, t, cex, fn, with_self=True):
        return None
    return _Found(text, frozenset(uses), cond)


def _holds_where_needed(comp: Any, g: Any, cond: Any) -> bool:
    """With the premise and the group's extra condition (what the solver holds), `cond` is
    satisfiable and the obligation is proved."""
    s = comp.solver
    if _check(s, cond) != z3.sat:             # vacuous (or undecided)
        return False
    return bool(_check(s, cond, z3.Not(g.goal)) == z3.unsat)


def _false_on(info: Any, t: Any, cex: Any, fn: Any, with_self: bool) -> bool:
    """The condition, run as Python, is false on the counterexample (it must exclude it)."""
    sc = cex.scenario if cex is not None else None
    if sc is None:
        return True
    cargs = [sc.message] if t.handler is not None else ([sc.arg] if sc.has_arg else [])
    if with_self:
        ok, err = holds(info, sc, fn, cargs)
    else:                                     # a port's contract: the message alone
        try:
            ok, err = bool(fn(*cargs)), ""
        except Exception as e:
            ok, err = False, str(e)
    return not (ok or err)


def _place(comp: Any, g: Any, t: Any, premise: list[Any], cex: Any, vocab: _Vocab,
           f: _Found) -> Suggestion:
    """Where the condition goes: an invariant (state only, when it is one), the action's
    guard, the receiving port's contract (a handler's condition on the message alone), or
    the handler's requires."""
    text, glob = f.text, vocab.globals
    lam = f"lambda {', '.join(vocab.params)}: {text}"
    if not (f.uses & {"message", "arg", "sender"}):
        inv = _as_invariant(comp, t, premise, text, glob)
        if inv is not None:
            return Suggestion("invariant", f"invariant({inv})", text, inv, f.exact)
    if t.action is not None:
        got = _as_guard(comp, g, t, premise, cex, vocab, f)
        if got is not None:
            return got
        return Suggestion("when", f"when={lam}", text, lam, f.exact,
                          note="conjoin it with the guard of "
                               f"{comp.cls.__name__}.{t.action.name}")
    if f.uses <= {"message"}:
        got = _as_contract(comp, g, t, premise, cex, vocab, f)
        if got is not None:
            return got
    return Suggestion("requires", f"@requires({lam})", text, lam, f.exact)


# --- the guard of an action, the contract of a port: rewritten declarations ---------------------

class _Source:
    """A spec file's source, to rewrite the text of one of its statements in place: the
    user's own text is kept around what changes (ast positions are UTF-8 byte offsets)."""

    def __init__(self, file: str) -> None:
        self.file = file
        lines = linecache.getlines(file)
        self.data = "".join(lines).encode()
        self.starts = [0]
        for ln in lines:
            self.starts.append(self.starts[-1] + len(ln.encode()))
        self.tree = ast.parse(self.data)

    def start(self, n: Any) -> int:
        return self.starts[n.lineno - 1] + n.col_offset  # type: ignore[no-any-return]

    def end(self, n: Any) -> int:
        return self.starts[n.end_lineno - 1] + n.end_col_offset  # type: ignore[no-any-return]

    def text(self, n: Any) -> str:
        return self.data[self.start(n):self.end(n)].decode()

    def edit(self, outer: Any, edits: list[tuple[int, int, str]]) -> str:
        """The text of `outer` with the byte ranges of `edits` replaced."""
        a, b = self.start(outer), self.end(outer)
        out = self.data[a:b]
        for s, e, text in sorted(edits, reverse=True):
            out = out[:s - a] + text.encode() + out[e - a:]
        return out.decode()

    def add_argument(self, call: ast.Call, text: str) -> tuple[int, int, str]:
        """The edit that adds an argument (`name=value`) at the end of a call."""
        last = [*call.args, *call.keywords]
        if last:
            e = max(self.end(x) for x in last)
            return e, e, f", {text}"
        p = self.data.index(b"(", self.end(call.func)) + 1
        return p, p, text


def _decorator(src: _Source, t: Any, glob: dict[str, Any]) -> ast.Call | None:
    """The `@action(...)` decorator of an action, in its file."""
    from assay.model.component import action

    code = getattr(getattr(t.fn, "__func__", t.fn), "__code__", None)
    if code is None:
        return None
    for n in ast.walk(src.tree):
        if not (isinstance(n, ast.FunctionDef) and n.name == code.co_name):
            continue
        first = n.decorator_list[0].lineno if n.decorator_list else n.lineno
        if first != code.co_firstlineno:
            continue
        for d in n.decorator_list:
            if isinstance(d, ast.Call) and (
                    isinstance(d.func, ast.Name) and glob.get(d.func.id) is action
                    or isinstance(d.func, ast.Attribute) and d.func.attr == "action"):
                return d
    return None


def _rename(text: str, names: dict[str, str]) -> str:
    """The condition `text` with the names in `names` renamed (a lambda's parameters)."""
    if all(k == v for k, v in names.items()):
        return text

    class Rename(ast.NodeTransformer):
        def visit_Name(self, n: ast.Name) -> ast.Name:
            return ast.Name(names.get(n.id, n.id), n.ctx)
    node = Rename().visit(ast.parse(text, mode="eval").body)
    return ast.unparse(ast.fix_missing_locations(node))


def _and(a: str, b: str) -> str:
    return f"{_operand(a, ast.Or)} and {_operand(b, ast.Or)}"


def _operand(text: str, looser: type) -> str:
    """`text` as an operand of `and` (looser: Or) or `or` (looser: And): in parentheses when it
    binds less tightly than that operator."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return f"({text})"
    if isinstance(node, ast.BoolOp) and isinstance(node.op, looser) \
            or isinstance(node, ast.IfExp | ast.Lambda | ast.NamedExpr):
        return f"({text})"
    return text


def _also_implies_old(comp: Any, premise: list[Any], old: Any, cond: Any) -> bool:
    """Without the old condition among the assumptions, `cond` implies it: the old one can go
    (the two guards, or contracts, are then the same condition)."""
    rest = [p for p in premise if not p.eq(old)]
    if len(rest) == len(premise):
        return False
    s = z3.Solver()
    s.set("timeout", max(1, int(comp.timeout * 1000)))
    s.add(*rest, cond, z3.Not(old))
    return bool(s.check() == z3.unsat)


def _lambda_params(n: Any) -> list[str] | None:
    if not isinstance(n, ast.Lambda):
        return None
    a = n.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
        return None
    return [x.arg for x in a.args]


def _new_lambda(src: _Source, old: ast.Lambda, body: str) -> str:
    """`old` with its body replaced: the user's own header (`lambda self, k: `) is kept."""
    header = src.data[src.start(old):src.start(old.body)].decode()
    return header + body


def _as_guard(comp: Any, g: Any, t: Any, premise: list[Any], cex: Any, vocab: _Vocab,
              f: _Found) -> Suggestion | None:
    """The action's decorator with the condition in its guard: `when=old and cond` (or the
    condition alone, when it implies the old guard), re-checked as it will be pasted."""
    enc, glob = comp.enc, vocab.globals
    code = getattr(getattr(t.fn, "__func__", t.fn), "__code__", None)
    if code is None:
        return None
    try:
        src = _Source(code.co_filename)
    except (SyntaxError, ValueError):
        return None
    dec = _decorator(src, t, glob)
    if dec is None:
        return None
    old: ast.expr | None = dec.args[0] if dec.args else None
    kw = next((k for k in dec.keywords if k.arg == "when"), None)
    if kw is not None:
        old = kw.value
    params = vocab.params
    if old is None or isinstance(old, ast.Constant) and old.value is None:
        body = f.text
        lam = f"lambda {', '.join(params)}: {body}"
    else:
        names = _lambda_params(old)
        if names is None or len(names) != len(params):
            return None
        assert isinstance(old, ast.Lambda)
        cond = _rename(f.text, dict(zip(params, names)))
        body = _and(src.text(old.body), cond)
        with contextlib.suppress(Unsupported):
            old_term = enc.predicate(t.action.when, [SelfObj(dict(enc.pre)), *(t.args or [])])
            if _also_implies_old(comp, premise, old_term, f.cond):
                body = cond
        params = names
        lam = _new_lambda(src, old, body)
    if old is not None:
        edit = (src.start(old), src.end(old), lam)
    else:
        edit = src.add_argument(dec, f"when={lam}")
    try:
        fn, (cond_term,) = _translate(enc, body, params, glob,
                                      [[SelfObj(dict(enc.pre)), *(t.args or [])]])
    except (Unsupported, SyntaxError, NameError):
        return None
    if not _holds_where_needed(comp, g, cond_term) or not _false_on(comp.info, t, cex, fn,
                                                                    True):
        return None
    return Suggestion("when", "@" + src.edit(dec, [edit]), f.text, lam, f.exact,
                      replaces=(src.file, dec.lineno, dec.end_lineno or dec.lineno))


def _port_declaration(src: _Source, port: Any) -> ast.Assign | None:
    """The `name = Port(...)` statement that declares a port."""
    line = port.location.line
    for n in ast.walk(src.tree):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 \
                and isinstance(n.targets[0], ast.Name) and n.targets[0].id == port.name \
                and isinstance(n.value, ast.Call) \
                and n.lineno <= line <= (n.end_lineno or n.lineno):
            return n
    return None


def _may_send(info: Any, port: str, mcls: type) -> bool:
    """Whether the component may send a `mcls` on `port` (read from the source: any send on
    the port whose message is not built in place with another class counts)."""
    for fn, _, _ in prove._component_functions(info):
        try:
            node = source.function_node(fn)
        except Unsupported:
            return True
        _, glob = source.fn_names(fn)
        for n in ast.walk(node):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("send", "broadcast")
                    and isinstance(n.func.value, ast.Attribute)
                    and n.func.value.attr == port):
                continue
            msg = n.args[0] if n.args else next(
                (k.value for k in n.keywords if k.arg == "message"), None)
            built = msg.func if isinstance(msg, ast.Call) else None
            if not (isinstance(built, ast.Name) and isinstance(glob.get(built.id), type)
                    and glob.get(built.id) is not mcls):
                return True
    return False


def _as_contract(comp: Any, g: Any, t: Any, premise: list[Any], cex: Any, vocab: _Vocab,
                 f: _Found) -> Suggestion | None:
    """The declaration of the handler's port with the condition as its contract for the
    message type, `Port(where={Msg: lambda m: ...})`: the handler assumes it, and `verify`
    proves that what each connected sender's port guarantees implies it.  Not for a handler
    of any port (no one port's contract is assumed), nor for a message the component also
    sets as a timer (a timer's message meets no port)."""
    enc, info, glob = comp.enc, comp.info, vocab.globals
    h: Any = t.handler
    port = info.ports.get(h.port)
    if port is None or enc.timer_messages is None or h.message in enc.timer_messages:
        return None
    if _may_send(info, h.port, h.message):
        return None                   # the contract would bind its own sends too
    if port.location is None or not port.location.file or not port.location.line:
        return None
    try:
        src = _Source(port.location.file)
    except (SyntaxError, ValueError):
        return None
    decl = _port_declaration(src, port)
    if decl is None:
        return None
    mcls: type = h.message
    mname: str | None = mcls.__name__
    if glob.get(mcls.__name__) is not mcls:
        mname = next((k for k, v in glob.items() if v is mcls and k.isidentifier()), None)
    if mname is None:
        return None
    call = decl.value
    assert isinstance(call, ast.Call)
    param = vocab.params[1]
    kw = next((k for k in call.keywords if k.arg == "where"), None)
    if kw is not None and not (isinstance(kw.value, ast.Dict) and None not in kw.value.keys):
        return None                   # a contract dict not written in place: not rewritten
    where = kw.value if kw is not None else None
    assert where is None or isinstance(where, ast.Dict)
    i = None if where is None else next(
        (i for i, k in enumerate(where.keys) if isinstance(k, ast.Name)
         and glob.get(k.id) is mcls), None)
    if where is None or i is None:
        body = f.text
        lam = f"lambda {param}: {body}"
        if where is None:
            edit = src.add_argument(call, f"where={{{mname}: {lam}}}")
        elif where.keys:
            e = src.end(where.values[-1])
            edit = (e, e, f", {mname}: {lam}")
        else:
            p = src.start(where) + 1
            edit = (p, p, f"{mname}: {lam}")
    else:
        old = where.values[i]
        names = _lambda_params(old)
        if names is None or len(names) != 1:
            return None
        assert isinstance(old, ast.Lambda)
        # the old contract stays: what the port accepts is about the message alone, so the
        # handler's other assumptions (which might make it redundant here) do not count
        body = _and(src.text(old.body), _rename(f.text, {param: names[0]}))
        param = names[0]
        lam = _new_lambda(src, old, body)
        edit = (src.start(old), src.end(old), lam)
    try:
        fn, (cond_term,) = _translate(enc, body, [param], glob, [list(t.args or [])])
    except (Unsupported, SyntaxError, NameError):
        return None
    if not _holds_where_needed(comp, g, cond_term) or not _false_on(info, t, cex, fn, False):
        return None
    return Suggestion("where", src.edit(decl, [edit]), f.text, lam, f.exact,
                      replaces=(src.file, decl.lineno, decl.end_lineno or decl.lineno),
                      note=f"{comp.cls.__name__}.{h.name} assumes it; each connected "
                           "sender's port must guarantee it")


def _as_invariant(comp: Any, t: Any, premise: list[Any], text: str,
                  glob: dict[str, Any]) -> str | None:
    """`lambda self: text` if it holds initially and this handler preserves it, else None."""
    enc, info = comp.enc, comp.info
    if t.body is None:
        return None
    try:
        fn, (before, after) = _translate(enc, text, ["self"], glob,
                                         [[SelfObj(dict(enc.pre))], [SelfObj(t.body.fields)]])
    except (Unsupported, SyntaxError, NameError):
        return None
    for name in comp.names:
        choices = initial_choices(comp.system, name, info)
        n = 1
        for c in choices:
            n *= len(c)
        if n > MAX_INITIAL:
            return None
        wiring = real_wiring(comp.system, name, info)
        starts = initial_rows(comp.system, name, info) if correlated(comp.system, name, info) \
            else itertools.product(*choices)
        for values in starts:
            ok, _ = holds(info, Scenario(name, tuple(values), wiring), fn, [])
            if not ok:
                return None
    s = vtypes.Solver()
    s.set("timeout", max(1, int(comp.timeout * 1000)))
    s.add(*premise, before, t.body.completed, z3.Not(after))
    if s.check() != z3.unsat:
        return None
    return f"lambda self: {text}"
