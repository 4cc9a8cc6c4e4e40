"""specs/kv_composite.py with a bug: the shard's primary acknowledges a write as soon as it
takes it, before its backup has stored it.

`check` finds it twice over: the shard's own property (`shard0.in_sync`, between writes the
backup holds the primary's value) and the outer one (an acknowledged write is on its shard's
backup); the shortest counterexample breaks the shard's, inside composite `shard0`.

    assay check specs/kv_composite_bug_early_ack.py
"""
from typing import Annotated

from kv_composite import KEYS, Backup, Client, Primary, Put, PutAck, Replicate, Router

from assay import Range, System, on

ASSAY_EXPECT = {"verdict": "violation", "property": "shard0.in_sync"}


class EagerPrimary(Primary):
    @on(Put, port="client", when=lambda self, m: not self.busy)
    def put(self, m):
        self.value = m.value
        self.backup.send(Replicate(m.value))
        self.client.send(PutAck(0, m.value))      # BUG: before the backup has stored it


def kv_shard():                    # not `-> System`: not a system to check on its own
    s = System("kv_shard", network="fifo")
    primary = s.add("primary", EagerPrimary)
    s.connect(primary.backup, s.add("backup", Backup).primary)
    s.export("client", primary.client)

    @s.always
    def in_sync(g):
        return g["primary"].busy or g["backup"].value == g["primary"].value

    return s


def system(writes: Annotated[int, Range(1, 4)] = 2) -> System:
    s = System("kv_composite", network="fifo")
    client = s.add("client", Client, writes=writes)
    router = s.add("router", Router)
    s.connect(client.kv, router.client)
    for k in KEYS:
        shard = s.add(f"shard{k}", kv_shard)
        s.connect(getattr(router, f"shard{k}"), shard.client)

    @s.always
    def acknowledged_writes_are_on_a_backup(g):
        c = g["client"]
        return g["shard0.backup"].value >= c.acked0 and g["shard1.backup"].value >= c.acked1

    @s.terminal
    def all_written(g):
        return g["client"].written == writes and not g["client"].waiting

    return s
