"""Provenance tracking: an interceptor on each client's connection stamps every message that
crosses it with where it came from, in meta the endpoints never see unless they ask.

Two clients each send a request to one server and wait for its reply.  Each connection carries
a `Provenance` interceptor (`via=Provenance`: an instance named after the connection, e.g.
`c1-server`) that adds its name to the message's `path` and, on a message's first hop, records
its `origin`.  The server asks for it (`self.meta(m)`) and logs it; the clients never look.
The interceptor is a component like any other: its ports keep to a protocol (a request from
the left, then a reply from the right, again and again), which every engine enforces, and it
has an invariant of its own.

    assay check specs/provenance_interceptor.py

proves that every logged request names its true origin — the client the server sees as its
sender — and the interceptor on that client's connection as its only hop.
"""
from assay import Component, Interceptor, Message, Port, System, action, invariant, on
from assay import protocol as p


class Request(Message):
    n: int


class Reply(Message):
    n: int


CLIENT = (p.send(Request) >> p.recv(Reply)).many()        # a client's side of a session


class Client(Component):
    srv = Port(protocol=CLIENT)
    rounds: int = 1
    sent: int = 0
    waiting: bool = False

    @action(when=lambda self: not self.waiting and self.sent < self.rounds)
    def ask(self):
        self.sent += 1
        self.waiting = True
        self.srv.send(Request(self.sent))

    @on(Reply)
    def reply(self, m):
        self.waiting = False


class Server(Component):
    clients = Port(protocol=CLIENT.dual(), many=True)
    log: tuple[tuple[str, str, tuple[str, ...]], ...] = ()    # (sender, origin, path)

    @on(Request)
    def request(self, m):
        meta = self.meta(m)
        self.log = (*self.log, (m.sender, meta.get("origin", "?"), meta.get("path", ())))
        self.clients.send(Reply(m.n), to=m.sender)


class Provenance(Interceptor):
    left = Port(protocol=CLIENT.dual())       # from the client: what a server sees
    right = Port(protocol=CLIENT)             # to the server: what a client does
    stamped: int = 0

    invariant(lambda self: self.stamped >= 0)

    @on(Message)
    def cross(self, m):
        meta = self.meta(m)
        self.stamped += 1
        self.forward(m, meta={"origin": meta.get("origin", m.sender),
                              "path": (*meta.get("path", ()), self.name)})


def system(clients: int = 2, rounds: int = 1):
    s = System("provenance_interceptor", network="unordered")
    srv = s.add("server", Server)
    for k in range(1, clients + 1):
        c = s.add(f"c{k}", Client, rounds=rounds)
        s.connect(c.srv, srv.clients, via=Provenance)

    @s.always
    def true_origin(g):
        return all(origin == sender and path == (f"{sender}-server",)
                   for sender, origin, path in g["server"].log)

    @s.terminal
    def served(g):
        return all(not c.waiting and c.sent == c.rounds for c in g.instances(Client))

    return s
