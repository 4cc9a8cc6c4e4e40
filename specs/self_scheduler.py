"""A worker that schedules its own work by messaging itself: each job takes several steps, and
after each step the worker sends itself the rest of the job (`Work`) through the network, from
its port `loop_out` to its port `loop_in` — so new submissions, and the steps of other jobs,
interleave with a long job instead of waiting for it, as an actor posting to its own mailbox.

A connection between two ports of one instance is an ordinary connection: its messages are in
flight like any other (the checker interleaves them, `assay run` routes them through the
instance's own inbox, a TCP node through its own outbox), and the receiving handler sees the
instance itself as the sender.

    assay check specs/self_scheduler.py
    assay check specs/self_scheduler.py --param loop_capacity=1
    assay run specs/self_scheduler.py

With `loop_capacity=1` the worker's loop holds one `Work` message at most, and a submission
that would start a second job waits for room ("block"): one job at a time, which
`one_at_a_time` checks.
"""
from assay import Component, Message, Port, System, action, on


class Submit(Message):
    job: int


class Done(Message):
    job: int


class Work(Message):
    job: int
    left: int                     # steps of the job still to do


class Client(Component):
    server = Port()
    jobs: int = 2
    submitted: int = 0
    done: frozenset[int] = frozenset()

    @action(when=lambda self: self.submitted < self.jobs)
    def submit(self):
        self.server.send(Submit(self.submitted))
        self.submitted += 1

    @on(Done)
    def finished(self, m):
        self.done = self.done | {m.job}


class Worker(Component):
    clients = Port()
    loop_out = Port()             # to itself ...
    loop_in = Port()              # ... and from itself
    steps: int = 2                # steps per job
    running: int = 0              # jobs under way
    finished: int = 0

    @on(Submit)
    def start(self, m):
        self.running += 1
        self.loop_out.send(Work(m.job, self.steps))

    @on(Work, port="loop_in")
    def step(self, m):
        if m.left > 1:                            # one step done: the rest, later
            self.loop_out.send(Work(m.job, m.left - 1))
        else:
            self.running -= 1
            self.finished += 1
            self.clients.send(Done(m.job))


def system(jobs: int = 2, steps: int = 2, loop_capacity: int = 0) -> System:
    s = System("self_scheduler", network="unordered", fairness="weak")
    client = s.add("client", Client, jobs=jobs)
    worker = s.add("worker", Worker, steps=steps)
    s.connect(client.server, worker.clients)
    # the worker's connection to itself (0: an unbounded loop)
    s.connect(worker.loop_out, worker.loop_in, capacity=loop_capacity or None)

    @s.always
    def counted(g):               # every submitted job is running, finished or on its way
        w = g["worker"]
        return w.running + w.finished <= g["client"].submitted

    if loop_capacity == 1:
        @s.always
        def one_at_a_time(g):
            return g["worker"].running <= 1

    @s.terminal
    def all_done(g):
        return len(g["client"].done) == jobs

    @s.eventually
    def every_job_done(g):
        return len(g["client"].done) == jobs

    return s
