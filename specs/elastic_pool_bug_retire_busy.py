"""The elastic worker pool of specs/elastic_pool.py with a bug: to shrink the pool, the
dispatcher retires any live worker, also one busy with a job, whose job is then lost.

`check` finds the shortest run where a worker is retired with a job in hand:

    assay check specs/elastic_pool_bug_retire_busy.py
"""
from assay import Component, Message, Peer, Port, System, action, on


class Submit(Message):
    job: int


class Job(Message):
    job: int


class Done(Message):
    job: int


class Client(Component):
    dispatcher = Port()
    sent: int = 0
    jobs: int = 3

    @action(when=lambda self: self.sent < self.jobs)
    def submit(self):
        self.dispatcher.send(Submit(self.sent))
        self.sent += 1


class Dispatcher(Component):
    client = Port()
    workers = Port(many=True)
    live: frozenset[Peer] = frozenset()     # the pool's live workers (kept by spawn/retire)
    idle: frozenset[Peer] = frozenset()     # live workers without a job
    queue: tuple[int, ...] = ()
    done: tuple[int, ...] = ()
    size: int = 2                           # the pool's bound (its slots)

    @on(Submit)
    def submitted(self, m):
        self.queue = self.queue + (m.job,)

    @action(when=lambda self: self.queue and self.idle)
    def dispatch(self):
        w = min(self.idle)
        self.idle = self.idle - {w}
        self.workers.send(Job(self.queue[0]), to=w)
        self.queue = self.queue[1:]

    @action(when=lambda self: self.queue and not self.idle and len(self.live) < self.size)
    def grow(self):
        self.idle = self.idle | {self.spawn("worker")}

    @action(when=lambda self: not self.queue and self.live)
    def shrink(self):
        w = min(self.live)            # BUG: a busy worker too (the fix: min(self.idle))
        self.idle = self.idle - {w}
        self.retire(w)

    @on(Done)
    def finished(self, m):
        self.done = self.done + (m.job,)
        self.idle = self.idle | {m.sender}


class Worker(Component):
    boss = Port()
    current: int | None = None

    @on(Job)
    def take(self, m):
        self.current = m.job

    @action(when=lambda self: self.current is not None)
    def finish(self):
        self.boss.send(Done(self.current))
        self.current = None


def system(jobs: int = 3, size: int = 2) -> System:
    s = System("elastic_pool_bug_retire_busy", network="unordered", fairness="weak")
    client = s.add("client", Client, jobs=jobs)
    d = s.add("dispatcher", Dispatcher, size=size)
    s.connect(client.dispatcher, d.client)
    s.pool("worker", Worker, size=size, owner=d.workers, port="boss", live="live")

    def accounted(g):
        """Every job submitted so far, wherever it is now."""
        disp = g["dispatcher"]
        where = set(disp.queue) | set(disp.done)
        where |= {w.current for w in g.instances(Worker)}
        where |= {e.message.job for e in g.in_flight(Submit)}
        where |= {e.message.job for e in g.in_flight(Job)}
        where |= {e.message.job for e in g.in_flight(Done)}
        return where

    @s.always
    def no_job_lost(g):
        return all(j in accounted(g) for j in range(g["client"].sent))

    @s.always
    def done_once(g):
        done = g["dispatcher"].done
        return len(done) == len(set(done))

    @s.always
    def pool_within_bounds(g):
        return len(g["dispatcher"].live) <= size and len(g.instances(Worker)) <= size

    @s.eventually
    def all_done(g):
        return len(g["dispatcher"].done) == jobs

    @s.terminal
    def finished(g):
        d = g["dispatcher"]
        return len(d.done) == jobs and not d.live
    return s


ASSAY_EXPECT = {"verdict": "violation", "property": "no_job_lost"}
