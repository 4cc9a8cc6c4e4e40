"""Symmetry reduction (`s.symmetric(...)`): orbit counts against an independent computation
on the unreduced state space, verdicts and concrete replayable counterexamples on buggy
specs, the value renaming, properties that are not symmetric, and the declaration's checks."""
from __future__ import annotations

import functools
import itertools
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, on
from assay.checker import check
from assay.checker.symmetry import Symmetry, rename_value
from assay.cli import main as cli_main
from assay.errors import SpecError
from assay.kernel.kernel import Kernel
from assay.kernel.trace import Trace, find_initial, replay_checked
from assay.model.mapping import Map
from assay.model.types import Peer

SPECS = Path(__file__).resolve().parent.parent / "specs"
sys.path.insert(0, str(SPECS))

import tla_twophase  # noqa: E402
import two_phase_commit as _two_phase_commit  # noqa: E402
import two_phase_commit_bug_majority as _bug_majority  # noqa: E402


class _WithSymmetricRMs:
    """A spec module whose `system(n, symmetric=True)` declares its RMs interchangeable
    (two_phase_commit's own `system` takes no such parameter: its CLI output and traces
    name exactly the parameters it always had)."""

    def __init__(self, module):
        self.module = module

    def system(self, n=3, symmetric=False):
        s = self.module.system(n)
        if symmetric:
            s.symmetric([x for x in s.instances if x.startswith("rm")])
        return s


two_phase_commit = _WithSymmetricRMs(_two_phase_commit)
two_phase_commit_bug_majority = _WithSymmetricRMs(_bug_majority)

STRATEGIES = ["bfs", "dfs"]


def reachable(k: Kernel) -> set:
    seen = {s for s, _ in k.initial_states()}
    frontier = list(seen)
    while frontier:
        nxt = []
        for s in frontier:
            for _, t, _ in k.successors(s)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return seen


def all_perms(sym: Symmetry) -> list[tuple[int, ...]]:
    (g,) = sym.groups
    out = []
    for q in itertools.permutations(g):
        p = list(sym.identity)
        for a, b in zip(g, q):
            p[a] = b
        out.append(tuple(p))
    return out


def brute_force_orbits(system: System, faults=None) -> tuple[int, int]:
    """(states, orbits) of the unreduced search: an orbit is named by the least fingerprint
    over every permutation of the group (no signatures, no sorting)."""
    k = Kernel(system, faults)
    sym = Symmetry(k)
    perms = all_perms(sym)
    states = reachable(k)
    orbits = {min(k.fingerprint(sym.permute(s, p)) for p in perms) for s in states}
    return len(states), len(orbits)


@functools.cache
def _brute_force_counts(module, n: int) -> tuple[int, int]:
    """`brute_force_orbits` of a shipped system, once for both strategies (the brute force
    is the cost of the test: every reachable state under every permutation)."""
    return brute_force_orbits(module.system(n, symmetric=True))


@pytest.mark.parametrize("module,n", [(tla_twophase, 3), (tla_twophase, 4), (tla_twophase, 5),
                                      (two_phase_commit, 3), (two_phase_commit, 4)])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_orbit_counts_equal_a_brute_force_count(module, n, strategy):
    states, orbits = _brute_force_counts(module, n)
    reduced = check(module.system(n, symmetric=True), strategy=strategy)
    full = check(module.system(n, symmetric=True), strategy=strategy, symmetry=False)
    assert reduced.verdict == full.verdict == "ok"
    assert full.states == states
    assert reduced.states == orbits < states
    assert reduced.symmetry["applied"] and reduced.symmetry["orbits"] == orbits
    assert not full.symmetry["applied"]


def test_shipped_counts_are_unreduced_unless_asked():
    assert check(tla_twophase.system(3)).states == 288
    assert check(tla_twophase.system(3)).symmetry is None
    assert check(tla_twophase.system(3, symmetric=True)).states == 80
    assert check(tla_twophase.system(5, symmetric=True)).states == 314


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n", [3, 4])
def test_buggy_spec_same_verdict_and_a_concrete_counterexample_that_replays(strategy, n,
                                                                             tmp_path):
    full = check(two_phase_commit_bug_majority.system(n), strategy=strategy)
    red = check(two_phase_commit_bug_majority.system(n, symmetric=True), strategy=strategy)
    assert full.verdict == red.verdict == "violation"
    assert (red.violation.kind, red.violation.name) == (full.violation.kind,
                                                         full.violation.name)
    if strategy == "bfs":
        assert len(red.steps) == len(full.steps)          # still a shortest one
    path = tmp_path / "cex.json"
    red.trace.write(path)
    trace = Trace.read(path)
    k = Kernel(two_phase_commit_bug_majority.system(n, symmetric=True))
    out = replay_checked(k, trace.events, find_initial(k, trace.initial))
    assert out.violation is not None
    assert out.violation.message == red.violation.message  # names the concrete instances
    assert len(out.steps) == len(red.steps)


def test_keep_going_findings_are_concrete():
    red = check(two_phase_commit_bug_majority.system(3, symmetric=True), keep_going=True)
    full = check(two_phase_commit_bug_majority.system(3), keep_going=True)
    assert {(f.violation.kind, f.violation.name) for f in red.findings} == \
        {(f.violation.kind, f.violation.name) for f in full.findings}
    for f in red.findings:
        k = Kernel(two_phase_commit_bug_majority.system(3, symmetric=True))
        out = replay_checked(k, f.trace.events, find_initial(k, f.trace.initial))
        assert out.violation is not None


# --- the renaming ---------------------------------------------------------------------------

NAMES = ["a", "b", "c", "x"]


def values() -> st.SearchStrategy:
    leaf = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES).map(Peer),
                     st.integers(-3, 3), st.booleans(), st.none())
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, inner), st.frozensets(inner, max_size=4),
        st.dictionaries(st.sampled_from(NAMES).map(Peer), inner, max_size=3).map(Map)),
        max_leaves=12)


def typed(v):
    """`v` with the type of every part, sets in a fixed order."""
    if isinstance(v, frozenset):
        return ("set", sorted((typed(x) for x in v), key=repr))
    if isinstance(v, tuple):
        return ("tuple", [typed(x) for x in v])
    if isinstance(v, Map):
        return ("map", sorted(((typed(k), typed(x)) for k, x in v.items()), key=repr))
    return (type(v).__name__, v)


@settings(max_examples=300, deadline=None)
@given(values(), st.permutations(["a", "b", "c"]))
def test_renaming_by_a_permutation_then_its_inverse_is_the_identity(v, perm):
    pi = dict(zip(["a", "b", "c"], perm))
    inv = {b: a for a, b in pi.items()}
    there = rename_value(v, pi)
    back = rename_value(there, inv)
    assert back == v
    assert typed(back) == typed(v)            # Peer stays Peer, str stays str
    if perm == ["a", "b", "c"]:
        assert there == v


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_state_and_its_permutations_have_one_representative(data):
    n = data.draw(st.sampled_from([3, 4]))
    module = data.draw(st.sampled_from([tla_twophase, two_phase_commit]))
    k = Kernel(module.system(n, symmetric=True))
    sym = Symmetry(k)
    states = sorted(reachable(k), key=k.fingerprint)
    s = data.draw(st.sampled_from(states))
    p = data.draw(st.sampled_from(all_perms(sym)))
    inv = [0] * len(p)
    for i, j in enumerate(p):
        inv[j] = i
    moved = sym.permute(s, p)
    assert moved in set(states)                       # a permutation of a reachable state
    assert sym.permute(moved, inv) == s
    assert sym.canon(moved) == sym.canon(s)
    assert sym.canon(s) in set(states)


def test_messages_peers_and_sessions_are_renamed():
    k = Kernel(two_phase_commit.system(3, symmetric=True))
    sym = Symmetry(k)
    p = list(sym.identity)
    rm0, rm2 = k.index["rm0"], k.index["rm2"]
    p[rm0], p[rm2] = rm2, rm0
    for s in reachable(k):
        t = sym.permute(s, p)
        assert k.local_values(t, "rm0") == k.local_values(s, "rm2")
        prepared = k.local_values(s, "tm")["prepared"]
        swap = {"rm0": "rm2", "rm2": "rm0"}
        assert k.local_values(t, "tm")["prepared"] == frozenset(swap.get(x, x)
                                                               for x in prepared)
        flights = sorted(str(e) for e in k.in_flight(t))
        renamed = sorted(str(e).replace("rm0", "@").replace("rm2", "rm0").replace("@", "rm2")
                         for e in k.in_flight(s))
        assert flights == renamed


# --- properties that are not symmetric ------------------------------------------------------

def test_a_property_reading_a_member_by_name_is_checked_unreduced():
    s = tla_twophase.system(3, symmetric=True)

    @s.always
    def rm1_not_aborted_alone(g):
        return g["rm1"].rm_state != tla_twophase.RM.ABORTED or g["tm"].tm_state.name != "X"

    r = check(s)
    assert not r.symmetry["applied"]
    assert "rm1_not_aborted_alone" in r.symmetry["why"] and "by name" in r.symmetry["why"]
    assert r.states == 288                                # every state
    assert any("symmetry reduction not applied" in w for w in r.warnings)


def test_a_property_reading_by_position_is_caught_by_the_spot_check():
    s = tla_twophase.system(3, symmetric=True)

    @s.always
    def first_never_commits_first(g):
        rms = g.instances(tla_twophase.ResourceManager)
        return not (rms[0].rm_state == tla_twophase.RM.PREPARED
                    and rms[1].rm_state == tla_twophase.RM.WORKING)

    full = check(tla_twophase.system(3, symmetric=True), symmetry=False)
    s2 = tla_twophase.system(3)

    @s2.always
    def first_never_commits_first2(g):
        return first_never_commits_first(g)

    r = check(s)
    assert not r.symmetry["applied"] and "first_never_commits_first" in r.symmetry["why"]
    assert r.verdict == check(s2).verdict == "violation"
    assert full.verdict == "ok"


def test_a_symmetric_property_is_reduced():
    r = check(two_phase_commit.system(3, symmetric=True))     # consistent, all_decided
    assert r.symmetry["applied"] and r.verdict == "ok" and r.states < 801


def test_a_symmetric_liveness_property_is_checked_on_the_orbits():
    # (tests/test_symmetry_liveness.py covers liveness under symmetry in depth)
    s = tla_twophase.system(3, symmetric=True)
    s.eventually(lambda g: g["tm"].tm_state != tla_twophase.TM.INIT)
    r = check(s)
    assert r.symmetry["applied"] and r.states == 80
    assert r.symmetry["liveness"] == {"<lambda>": "on orbits"}
    full = check(s, symmetry=False)
    assert full.states == 288 and r.verdict == full.verdict == "violation"


def test_no_symmetry_explores_every_state():
    r = check(tla_twophase.system(3, symmetric=True), symmetry=False)
    assert r.states == 288 and r.symmetry["why"].startswith("turned off")
    assert not r.warnings


# --- the declaration -------------------------------------------------------------------------

class Ping(Message): ...


class Node(Component):
    out = Port()
    n: int = 0

    @action(when=lambda self: self.n < 1)
    def go(self):
        self.n += 1
        self.out.send(Ping())

    @on(Ping)
    def got(self, m):
        pass


class Other(Node):
    pass


class Hub(Component):
    nodes = Port(many=True)
    seen: frozenset = frozenset()

    @on(Ping)
    def got(self, m):
        self.seen = self.seen | {m.sender}


def star(n: int = 3, network: str = "unordered", **kw) -> tuple[System, list]:
    s = System("star", network=network)
    hub = s.add("hub", Hub)
    nodes = [s.add(f"n{i}", Node, **kw.get(f"n{i}", {})) for i in range(n)]
    for x in nodes:
        s.connect(x.out, hub.nodes)
    return s, nodes


@pytest.mark.parametrize("network", ["unordered", "fifo", "duplicating"])
def test_a_star_is_reduced(network):
    s, nodes = star(3, network)
    s.symmetric(nodes)
    r = check(s)
    full = check(s, symmetry=False)
    assert r.symmetry["applied"] and r.states < full.states
    assert brute_force_orbits(s) == (full.states, r.states)


def test_crashes_are_renamed():
    from assay.kernel.faults import Faults

    s, nodes = star(3)
    s.symmetric(nodes)
    faults = Faults(crash=1)
    r = check(Kernel(s, faults, deadlock=False))
    full = check(Kernel(s, faults, deadlock=False), symmetry=False)
    assert r.symmetry["applied"] and r.verdict == full.verdict == "ok"
    assert brute_force_orbits(s, faults) == (full.states, r.states)


def test_members_of_different_classes_are_refused():
    s = System("mixed")
    hub = s.add("hub", Hub)
    a, b = s.add("a", Node), s.add("b", Other)
    s.connect(a.out, hub.nodes)
    s.connect(b.out, hub.nodes)
    s.symmetric(a, b)
    with pytest.raises(SpecError, match="'b' is a Other, 'a' a Node"):
        check(s)


def test_members_with_other_initial_values_are_refused():
    s, nodes = star(2, n1={"n": 1})
    s.symmetric(nodes)
    with pytest.raises(SpecError, match="other initial values") as e:
        check(s)
    assert e.value.location is not None and "test_symmetry" in str(e.value.location)


def test_members_wired_otherwise_are_refused():
    s = System("lopsided")
    hub, hub2 = s.add("hub", Hub), s.add("hub2", Hub)
    a, b = s.add("a", Node), s.add("b", Node)
    s.connect(a.out, hub.nodes)
    s.connect(b.out, hub2.nodes)
    s.symmetric(a, b)
    with pytest.raises(SpecError, match="connected otherwise"):
        check(s)


def test_bad_declarations():
    s, nodes = star(2)
    with pytest.raises(SpecError, match="at least two"):
        s.symmetric(nodes[0])
    with pytest.raises(SpecError, match="instances of this system"):
        s.symmetric("n0", "nope")
    s.symmetric("n0", "n1")
    with pytest.raises(SpecError, match="twice"):
        s.symmetric("n1", "hub")


class Picky(Component):
    """A hub that treats n0 apart: its nodes are not interchangeable."""

    nodes = Port(many=True)
    seen: frozenset = frozenset()
    first: bool = False

    @on(Ping)
    def got(self, m):
        self.seen = self.seen | {m.sender}
        if m.sender == "n0":
            self.first = True


def test_code_that_names_a_member_is_refused():
    s = System("picky")
    hub = s.add("hub", Picky)
    nodes = [s.add(f"n{i}", Node) for i in range(3)]
    for x in nodes:
        s.connect(x.out, hub.nodes)
    s.symmetric(nodes)
    with pytest.raises(SpecError, match="not interchangeable"):
        check(s)


def test_cli_no_symmetry_and_json(tmp_path):
    runner = CliRunner()
    spec = str(SPECS / "tla_twophase.py")
    res = runner.invoke(cli_main, ["check", spec, "-p", "symmetric=true", "--json", "-q"])
    doc = json.loads(res.output)
    assert doc["states"] == 80 and doc["symmetry"]["applied"] and doc["symmetry"]["orbits"] == 80
    # what the reduction assumes and did not check everywhere is said, not only "exhaustive"
    assert doc["symmetry"]["code"].startswith("assumed; spot-checked")
    res = runner.invoke(cli_main, ["check", spec, "-p", "symmetric=true", "--no-symmetry",
                                   "--json", "-q"])
    doc = json.loads(res.output)
    assert doc["states"] == 288 and not doc["symmetry"]["applied"]
    res = runner.invoke(cli_main, ["check", spec, "-p", "symmetric=true", "-q"])
    assert "orbits" in res.output and "80" in res.output
    text = " ".join(res.output.split())
    assert "the members' code is taken not to tell them apart (assumed; spot-checked" in text


class Follower(Component):
    out = Port()
    leader: str = "n0"

    @action(when=lambda self: self.leader == "n0")
    def go(self):
        self.leader = "none"


def test_an_initial_value_naming_a_member_is_refused():
    s = System("followers")
    nodes = [s.add(f"n{i}", Follower) for i in range(3)]
    hub = s.add("hub", Hub)
    for x in nodes:
        s.connect(x.out, hub.nodes)
    s.symmetric(nodes)
    with pytest.raises(SpecError, match="not an initial state"):
        check(s)


def test_two_groups():
    s = System("two_stars")
    for h in ("a", "b"):
        hub = s.add(f"hub_{h}", Hub)
        nodes = [s.add(f"{h}{i}", Node) for i in range(3 if h == "a" else 2)]
        for x in nodes:
            s.connect(x.out, hub.nodes)
        s.symmetric(nodes)
    k = Kernel(s)
    sym = Symmetry(k)
    perms = []
    ga, gb = sym.groups
    for qa in itertools.permutations(ga):
        for qb in itertools.permutations(gb):
            p = list(sym.identity)
            for x, y in [*zip(ga, qa), *zip(gb, qb)]:
                p[x] = y
            perms.append(p)
    states = reachable(k)
    orbits = {min(k.fingerprint(sym.permute(st, p)) for p in perms) for st in states}
    r = check(s)
    assert r.symmetry["applied"] and r.states == len(orbits) < len(states)


# --- a representative that is not the orbit's only one ---------------------------------------

@pytest.mark.parametrize("servers", [3, 4])
def test_raft_double_vote_is_found_under_symmetry_with_a_concrete_shortest_counterexample(
        servers, tmp_path):
    """Raft's servers are all connected to each other: members with equal signatures are
    not always interchangeable in a state, so `canon` keeps several representatives of one
    orbit, and rebuilding the counterexample by matching representatives failed ("the
    instances declared symmetric are not interchangeable", exit 2) although they are.  The
    concrete path now follows the permutation from the representatives' path."""
    import raft_election
    import raft_election_bug_double_vote as bug

    full = check(bug.system(servers))
    red = check(bug.system(servers, symmetric=True))
    assert full.verdict == red.verdict == "violation"
    assert red.symmetry["applied"]
    assert red.violation.name == full.violation.name == "election_safety"
    assert len(red.steps) == len(full.steps)              # still a shortest one
    path = tmp_path / "cex.json"
    red.trace.write(path)
    trace = Trace.read(path)
    k = Kernel(bug.system(servers, symmetric=True))
    out = replay_checked(k, trace.events, find_initial(k, trace.initial))
    assert out.violation is not None and out.violation.name == "election_safety"
    assert len(out.steps) == len(red.steps)
    if servers == 3:                                      # the fixed spec holds either way
        ok, ok_red = check(raft_election.system(3)), check(raft_election.system(3, symmetric=True))
        assert ok.verdict == ok_red.verdict == "ok"
        assert ok_red.states < ok.states
