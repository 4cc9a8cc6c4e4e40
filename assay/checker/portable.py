"""States that cross processes: a portable encoding, and a fingerprint to shard them by.

A kernel's state is made of ids interned in discovery order (local states, envelopes,
timers), so the same state has different ids in two processes.  `Portable` turns a state
of one kernel into plain bytes-and-ints (`encode`) and back into the ids of another kernel
of the same system (`decode`), and gives each state a 64-bit `owner_key` that is the same in
every process (never `hash()`): what the parallel search (`parallel.py`) shards by.

The encoded form of a local state, an envelope or a timer is its pickled value, made once
per id and cached; a state is then a tuple of those bytes objects, so encoding costs a few
list lookups, and pickling a batch of states stores each distinct part once (pickle's memo).
Decoding looks each part up in a cache (bytes -> id) and unpickles only what this process has
not seen.  Two processes may pickle equal values to different bytes (a frozenset's order);
both decode to the one id the kernel interns for that value, so identity stays exact.  The
key is computed from the canonical bytes (`canonical`) of the parts, so it is the same for
equal states everywhere; it only decides which worker owns a state, and a collision of two
keys costs nothing but balance.  (Worker processes forked from one parent may key local
states by `hash()` instead, `forked=True`: they share the parent's hash secret, so equal
values have equal hashes in all of them, and the key never leaves that family of processes.)

Only the checker's searches use this; the pickled values come from this system's own worker
processes (or Ray actors), never from the network of a deployment.
"""
from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from operator import getitem
from typing import Any

from assay.kernel.kernel import Kernel, State
from assay.kernel.network import Duplicating, Fifo
from assay.model.types import canonical

MASK = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15          # odd: a multiplication by it permutes the 64-bit numbers
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_CACHE = 500_000                   # entries of the encode and decode caches, at most


def _key64(tag: bytes, data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(tag + data, digest_size=8).digest(), "big")


class Portable:
    """The codec of one kernel's states (per-id caches grow with what it meets)."""

    def __init__(self, kernel: Kernel, forked: bool = False) -> None:
        self.kernel = kernel
        # keys of local states by `hash()`, for processes forked from one parent only: they
        # share its hash secret, and `canonical` costs 50x more on large local states
        self.forked = forked
        n = len(kernel.instances)
        # per instance, indexed by local id: the pickled values and the key
        self._lpay: list[dict[int, bytes]] = [{} for _ in range(n)]
        self._lkey: list[dict[int, int]] = [{} for _ in range(n)]
        self._ldec: list[dict[bytes, int]] = [{} for _ in range(n)]
        # per envelope id (and per timer id): the pickled envelope and its key
        self._epay: list[bytes] = []
        self._ekey: list[int] = []
        self._edec: dict[bytes, int] = {}
        self._tpay: list[bytes] = []
        self._tkey: list[int] = []
        self._tdec: dict[bytes, int] = {}
        # encoded locals tuples and networks by value, and back (bounded: cleared when full)
        self._enc_locals: dict[Any, Any] = {}
        self._enc_net: dict[Any, Any] = {}
        self._dec_locals: dict[Any, Any] = {}
        self._dec_net: dict[Any, Any] = {}
        net = kernel.network
        self._fifo = isinstance(net, Fifo)
        self._dup = isinstance(net, Duplicating)
        self._extended = kernel.extended

    # --- the caches, filled on a miss ---------------------------------------------------------

    def _fill_keys(self, locals_: tuple[int, ...]) -> None:
        for i, lid in enumerate(locals_):
            keys = self._lkey[i]
            if lid not in keys:
                table = self.kernel.instances[i].table
                keys[lid] = self._local_key(i, table.values[lid], lid)

    def _local_key(self, i: int, values: tuple[Any, ...], lid: int) -> int:
        if self.forked:
            return (hash(values) * (2 * i + 1) + i) & MASK
        return _key64(b"L%d:" % i, self.kernel.instances[i].table.canonical(lid))

    def _fill_payloads(self, locals_: tuple[int, ...]) -> None:
        for i, lid in enumerate(locals_):
            pays = self._lpay[i]
            if lid not in pays:
                pays[lid] = pickle.dumps(self.kernel.instances[i].table.values[lid], _PROTOCOL)

    def _fill_envelopes(self) -> None:
        k = self.kernel
        for e in range(len(self._epay), len(k.envs)):
            env = k.envs[e]
            self._epay.append(pickle.dumps(env, _PROTOCOL))
            self._ekey.append(_key64(b"E", canonical(
                (env.src, env.src_port, env.dst, env.dst_port, env.message))))

    def _fill_timers(self) -> None:
        k = self.kernel
        for t in range(len(self._tpay), len(k.timers)):
            i, delay, msg = k.timers[t]
            self._tpay.append(pickle.dumps(k.timers[t], _PROTOCOL))
            self._tkey.append(_key64(b"T", canonical((k.instances[i].name, delay, msg))))

    # --- the owner key ------------------------------------------------------------------------

    def owner_key(self, state: State) -> int:
        """A 64-bit number of `state`, the same for equal states in every process."""
        x = self.locals_key(state[0]) + self.net_key(state[1])
        if self._extended:
            _, _, timers, down, budget, cut = state
            try:
                x += sum(map(self._tkey.__getitem__, timers)) * 5
            except IndexError:
                self._fill_timers()
                return self.owner_key(state)
            x += down * 0x100000001B3 + cut * 0xCBF29CE484222325 + sum(
                (j + 7) * b for j, b in enumerate(budget)) * 0x5BD1E995
        return (x * _MIX) & MASK

    def sharder(self, n: int, by: tuple[int, ...] | None = None) -> Callable[[State], int]:
        """A function from a state to the one of `n` workers that owns it (`owner`), with
        caches of the keys of locals tuples and network values (most states share them).

        With `by` (instance indices), a state's owner depends on the local states of those
        instances only: a step of any other instance keeps its state with the worker that
        expanded it (`parallel.shard_by` chooses them)."""
        if n == 1:
            return lambda state: 0
        if by is not None:
            return self._sharder_by(n, by)
        if self._extended:
            key = self.owner_key
            return lambda state: ((key(state) >> 16) * n) >> 48
        lcache: dict[Any, int] = {}
        ncache: dict[Any, int] = {}
        lkey, nkey = self.locals_key, self.net_key

        def owner(state: State) -> int:
            locals_, net = state
            a = lcache.get(locals_)
            if a is None:
                if len(lcache) > 1_000_000:
                    lcache.clear()
                a = lcache[locals_] = lkey(locals_)
            b = ncache.get(net)
            if b is None:
                if len(ncache) > 1_000_000:
                    ncache.clear()
                b = ncache[net] = nkey(net)
            return ((((a + b) * _MIX) & MASK) >> 16) * n >> 48
        return owner

    def _sharder_by(self, n: int, by: tuple[int, ...]) -> Callable[[State], int]:
        lcache: dict[Any, int] = {}
        lkeys = self._lkey

        def key(locals_: tuple[int, ...]) -> int:
            try:
                return sum([lkeys[i][locals_[i]] for i in by])
            except KeyError:
                self._fill_keys(locals_)
                return sum([lkeys[i][locals_[i]] for i in by])

        def owner(state: State) -> int:
            locals_ = state[0]
            a = lcache.get(locals_)
            if a is None:
                if len(lcache) > 1_000_000:
                    lcache.clear()
                a = lcache[locals_] = ((((key(locals_) * _MIX) & MASK) >> 16) * n) >> 48
            return a
        return owner

    def locals_key(self, locals_: tuple[int, ...]) -> int:
        try:
            return sum(map(getitem, self._lkey, locals_))
        except KeyError:
            self._fill_keys(locals_)
            return sum(map(getitem, self._lkey, locals_))

    def envelope_keys(self) -> list[int]:
        """Per envelope id interned so far, its 64-bit key (the same in every process)."""
        if len(self._ekey) < len(self.kernel.envs):
            self._fill_envelopes()
        return self._ekey

    def envelope_payloads(self, start: int) -> list[bytes]:
        """The pickled envelopes of the ids from `start` on, of those interned so far (what
        `_env_id` reads in another process)."""
        if len(self._epay) < len(self.kernel.envs):
            self._fill_envelopes()
        return self._epay[start:]

    def net_key(self, net: Any) -> int:
        ekey = self._ekey
        try:
            if self._fifo:
                x = 0
                for link, q in enumerate(net):
                    for pos, e in enumerate(q, 1):
                        x += ekey[e] * (2 * pos + 1) + link
                return x
            return sum(map(ekey.__getitem__, net)) * 3
        except IndexError:
            self._fill_envelopes()
            return self.net_key(net)

    def owner(self, state: State, n: int) -> int:
        """Which of `n` workers owns `state`."""
        return ((self.owner_key(state) >> 16) * n) >> 48

    # --- encode, decode -----------------------------------------------------------------------

    def encode(self, state: State) -> tuple[Any, ...]:
        """`state` as plain values another process's `decode` reads.  The encoded locals
        tuple and network value are cached by value: states that share them share one object
        (pickled once per batch)."""
        locs = self._enc_locals.get(state[0])
        if locs is None:
            locs = self._encode_locals(state[0])
        enet = self._enc_net.get(state[1])
        if enet is None:
            enet = self._encode_net(state[1])
        if not self._extended:
            return (locs, enet)
        _, _, timers, down, budget, cut = state
        try:
            etimers = tuple(map(self._tpay.__getitem__, timers))
        except IndexError:
            self._fill_timers()
            return self.encode(state)
        return (locs, enet, etimers, down, budget, cut)

    def _encode_locals(self, locals_: tuple[int, ...]) -> tuple[bytes, ...]:
        try:
            locs = tuple(map(getitem, self._lpay, locals_))
        except KeyError:
            self._fill_payloads(locals_)
            locs = tuple(map(getitem, self._lpay, locals_))
        self._remember(self._enc_locals, locals_, locs)
        return locs

    def _encode_net(self, net: Any) -> Any:
        epay = self._epay
        try:
            if self._fifo:
                enet: Any = tuple(tuple(map(epay.__getitem__, q)) for q in net)
            else:
                enet = tuple(map(epay.__getitem__, net))
        except IndexError:
            self._fill_envelopes()
            return self._encode_net(net)
        self._remember(self._enc_net, net, enet)
        return enet

    @staticmethod
    def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= _CACHE:
            cache.clear()
        cache[key] = value

    def decode(self, enc: tuple[Any, ...]) -> State:
        """The state `encode` gave (in any process), in this kernel's ids."""
        lids = self._dec_locals.get(enc[0])
        if lids is None:
            lids = tuple(self._local_id(i, p) for i, p in enumerate(enc[0]))
            self._remember(self._dec_locals, enc[0], lids)
        enet = enc[1]
        net = self._dec_net.get(enet)
        if net is None:
            net = self._decode_net(enet)
            self._remember(self._dec_net, enet, net)
        if not self._extended:
            return (lids, net)
        _, _, etimers, down, budget, cut = enc
        timers = tuple(sorted(self._timer_id(p) for p in etimers))
        return (lids, net, timers, down, budget, cut)

    def _decode_net(self, enet: Any) -> Any:
        return self.net_from(enet, self._env_id)

    def net_from(self, net: Any, env_id: Callable[[Any], int]) -> Any:
        """A network of another process, its envelopes in any form (`env_id` gives each
        one's id here), in this kernel's ids and canonical form: per link in order (fifo),
        a set (duplicating), or sorted."""
        if self._fifo:
            return tuple([tuple(map(env_id, q)) for q in net])
        ids = list(map(env_id, net))
        return frozenset(ids) if self._dup else tuple(sorted(ids))

    def _local_id(self, i: int, payload: bytes) -> int:
        dec = self._ldec[i]
        lid = dec.get(payload)
        if lid is None:
            lid = dec[payload] = self.kernel.instances[i].table.intern(pickle.loads(payload))
        return lid

    def _env_id(self, payload: bytes) -> int:
        e = self._edec.get(payload)
        if e is None:
            e = self._edec[payload] = self.kernel._env_id(pickle.loads(payload))
        return e

    def _timer_id(self, payload: bytes) -> int:
        t = self._tdec.get(payload)
        if t is None:
            k = self.kernel
            key = pickle.loads(payload)
            t = k.timer_ids.get(key)
            if t is None:                  # interned as `Kernel._timer_ops` does
                t = k.timer_ids[key] = len(k.timers)
                k.timers.append(key)
            self._tdec[payload] = t
        return t
