"""One-shot workers: a pool that starts with one live worker (`min=1`) and whose workers
retire themselves (`self.retire()`) once their job is done.

A client submits jobs.  Each worker announces itself (`Ready`, from its start hook: at the
start for the slot live from the start, when spawned for the others), takes one job, sends
it back done and retires itself in the same step; the kernel tells the dispatcher
(`Retired`), whose `live` forgets the slot, and the dispatcher spawns a worker again while
jobs wait.  Every job is done exactly once, none is lost, the pool stays within its bound.
Its twin, specs/elastic_self_retire_bug_early.py, retires a worker as it takes its job:
`check` shows the job lost.

    assay check specs/elastic_self_retire.py
    assay check specs/elastic_self_retire_bug_early.py
"""
from assay import Component, Message, Peer, Port, System, action, on, on_start


class Submit(Message):
    job: int


class Job(Message):
    job: int


class Done(Message):
    job: int


class Ready(Message):
    pass


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
    live: frozenset[Peer] = frozenset()     # live workers (the pool keeps it; min=1: worker0)
    idle: frozenset[Peer] = frozenset()     # workers that said Ready and have no job
    spawning: int = 0                       # spawned, not Ready yet
    queue: tuple[int, ...] = ()
    done: tuple[int, ...] = ()
    size: int = 2

    @on(Submit)
    def submitted(self, m):
        self.queue = self.queue + (m.job,)

    @on(Ready)
    def ready(self, m):
        self.idle = self.idle | {m.sender}
        self.spawning = max(0, self.spawning - 1)

    @action(when=lambda self: self.queue and self.idle)
    def dispatch(self):
        w = min(self.idle)
        self.idle = self.idle - {w}
        self.workers.send(Job(self.queue[0]), to=w)
        self.queue = self.queue[1:]

    @action(when=lambda self: len(self.queue) > len(self.idle) + self.spawning
            and len(self.live) < self.size)
    def grow(self):
        self.spawn("worker")
        self.spawning += 1

    @on(Done)
    def finished(self, m):
        self.done = self.done + (m.job,)


class Worker(Component):
    boss = Port()
    current: int | None = None

    @on_start
    def hello(self):
        self.boss.send(Ready())

    @on(Job)
    def take(self, m):
        self.current = m.job

    @action(when=lambda self: self.current is not None)
    def finish(self):
        self.boss.send(Done(self.current))
        self.current = None
        self.retire()                       # one job each: the slot is dormant again


def system(jobs: int = 3, size: int = 2) -> System:
    s = System("elastic_self_retire", network="unordered", fairness="weak")
    client = s.add("client", Client, jobs=jobs)
    d = s.add("dispatcher", Dispatcher, size=size)
    s.connect(client.dispatcher, d.client)
    s.pool("worker", Worker, size=size, owner=d.workers, port="boss", live="live", min=1)

    @s.always
    def no_job_lost(g):
        disp = g["dispatcher"]
        where = set(disp.queue) | set(disp.done)
        where |= {w.current for w in g.instances(Worker)}
        for t in (Submit, Job, Done):
            where |= {e.message.job for e in g.in_flight(t)}
        return all(j in where for j in range(g["client"].sent))

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
        return len(g["dispatcher"].done) == jobs
    return s
