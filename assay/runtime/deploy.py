"""Deployment files: which instance runs on which node, checked before anything starts.

    # deploy.toml
    spec = "specs/two_phase_commit.py"       # relative to this file
    system = "system"                        # optional
    secret_env = "ASSAY_SECRET"              # or: secret = "..." (a shared secret, >= 16 chars)
    [params]
    rm_count = 2
    [nodes.n1]
    host = "127.0.0.1"
    port = 7101
    instances = ["tm"]
    [nodes.n2]
    host = "127.0.0.1"
    port = 7102
    instances = ["rm0", "rm1"]
    [constraints]
    together = [["rm0", "rm1"]]              # on the same node
    apart = [["tm", "rm0"]]                  # on different nodes

Every instance of the system is placed on exactly one node; a constraint that does not hold, an
unknown instance or node, or a missing secret is a `UsageError` naming the file, and so is a
field of the wrong type (or one the format does not have): the error names the field, what was
found and what to write instead.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assay.errors import Location, UsageError

CONTROL = "control"      # the name control connections (state, status, stop) authenticate as
NAME_MAX = 256           # characters of a node's name (what the handshake carries, wire.py)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    host: str
    port: int
    instances: tuple[str, ...]


@dataclass(frozen=True)
class Deployment:
    path: Path
    spec: str
    system: str | None
    params: dict[str, str]
    secret: bytes
    nodes: dict[str, NodeSpec]
    placement: dict[str, str]                 # instance -> node
    together: tuple[tuple[str, ...], ...] = ()
    apart: tuple[tuple[str, ...], ...] = ()

    def node_of(self, instance: str) -> str:
        return self.placement[instance]


_TOP = ("spec", "system", "secret", "secret_env", "params", "nodes", "constraints")
_NODE = ("host", "port", "instances")
_CONSTRAINTS = ("together", "apart")


def _toml(value: Any) -> str:
    """`value` as it is written in TOML (what the user wrote, near enough to find it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
             (list, "an array"), (dict, "a table"))
    return next((k for t, k in kinds if isinstance(value, t)), "a date or time")


def _wrong(where: Location, field: str, value: Any, want: str, write: str) -> UsageError:
    """The error for one field: the file, the field, what was found and what to write."""
    found = _toml(value)
    if len(found) > 60:
        found = found[:57] + "..."
    return UsageError(f"{field} is {found} ({_kind(value)}), not {want}", where,
                      [f"write {write}"])


def _unknown(where: Location, table: str, doc: dict[str, Any], known: tuple[str, ...]) -> None:
    """A key the deployment format does not have (a typo, say) is an error, not ignored."""
    for key in doc:
        if key not in known:
            raise UsageError(f"{table}{key} is not a field of a deployment", where,
                             [f"the fields {'of ' + table[:-1] if table else 'at the top'} "
                              f"are: {', '.join(known)}"])


def _is_name_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, str) for i in value)


def _text(where: Location, doc: dict[str, Any], key: str, write: str) -> str | None:
    value = doc.get(key)
    if value is not None and (not isinstance(value, str) or "\0" in value):
        raise _wrong(where, key, value, "a string (without NUL characters)", write)
    return value


def _params(where: Location, raw: Any) -> dict[str, str]:
    """[params]: one scalar per parameter of the system function (passed on as text)."""
    write = "[params] with one line per parameter, e.g. rm_count = 2"
    if not isinstance(raw, dict):
        raise _wrong(where, "params", raw, "a table", write)
    for k, v in raw.items():
        if not isinstance(v, str | int | float | bool):
            raise _wrong(where, f"params.{k}", v, "a string, number or boolean",
                         f"{k} = 2 (or \"text\", true) under [params]")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}


def _node(where: Location, name: str, raw: Any) -> NodeSpec:
    """[nodes.NAME]: host (a string, default 127.0.0.1), port (1..65535), instances."""
    field = f"nodes.{name}"
    example = f'[nodes.{name}] with host = "127.0.0.1", port = 7101, instances = ["..."]'
    if not isinstance(raw, dict):
        raise _wrong(where, field, raw, "a table", example)
    _unknown(where, f"{field}.", raw, _NODE)
    if not 0 < len(name) <= NAME_MAX:
        raise UsageError(f"a node's name is 1 to {NAME_MAX} characters, not {len(name)}: "
                         f"[nodes.{name[:40]}...]", where, ["rename the node"])
    host = raw.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host or "\0" in host:
        raise _wrong(where, f"{field}.host", host, "a host name or address",
                     f'host = "127.0.0.1" under [nodes.{name}]')
    if "port" not in raw:
        raise UsageError(f"{field}.port is missing", where,
                         [f"write port = 7101 (a free port) under [nodes.{name}]"])
    port = raw["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _wrong(where, f"{field}.port", port, "a port number in 1..65535",
                     f"port = 7101 (a whole number, where its peers reach it) under "
                     f"[nodes.{name}]")
    instances = raw.get("instances", [])
    if not _is_name_list(instances):
        raise _wrong(where, f"{field}.instances", instances, "an array of instance names",
                     f'instances = ["tm", "rm0"] under [nodes.{name}]')
    return NodeSpec(name, host, port, tuple(instances))


def _nodes(where: Location, raw: Any) -> tuple[dict[str, NodeSpec], dict[str, str]]:
    """Every [nodes.NAME], on distinct addresses, each instance on one of them."""
    if raw is None or raw == {}:
        raise UsageError("the deployment has no [nodes.<name>] sections", where,
                         ['write [nodes.n1] with host = "127.0.0.1", port = 7101, '
                          'instances = ["..."]'])
    if not isinstance(raw, dict):
        raise _wrong(where, "nodes", raw, "a table of nodes",
                     '[nodes.n1] with host = "127.0.0.1", port = 7101, instances = ["..."]')
    nodes: dict[str, NodeSpec] = {}
    placement: dict[str, str] = {}
    addresses: dict[tuple[str, int], str] = {}
    for name, n in raw.items():
        node = _node(where, name, n)
        if name == CONTROL:
            raise UsageError(f"a node may not be named {CONTROL!r}: control connections (state, "
                             "status, stop) authenticate as that name", where,
                             ["rename the node"])
        other = addresses.get((node.host, node.port))
        if other is not None:
            raise UsageError(f"nodes {other!r} and {name!r} both listen on "
                             f"{node.host}:{node.port}", where)
        addresses[(node.host, node.port)] = name
        nodes[name] = node
        for inst in node.instances:
            if inst in placement:
                raise UsageError(f"instance {inst!r} is placed on both {placement[inst]!r} "
                                 f"and {name!r}", where)
            placement[inst] = name
    return nodes, placement


def _constraints(where: Location, raw: Any) -> dict[str, tuple[tuple[str, ...], ...]]:
    """[constraints]: together and apart, each an array of arrays of instance names."""
    if not isinstance(raw, dict):
        raise _wrong(where, "constraints", raw, "a table",
                     '[constraints] with together = [["rm0", "rm1"]], apart = [["tm", "rm0"]]')
    _unknown(where, "constraints.", raw, _CONSTRAINTS)
    groups: dict[str, tuple[tuple[str, ...], ...]] = {}
    for kind in _CONSTRAINTS:
        value = raw.get(kind, [])
        if not isinstance(value, list) or not all(_is_name_list(g) for g in value):
            raise _wrong(where, f"constraints.{kind}", value,
                         "a list of lists of instance names",
                         f'{kind} = [["rm0", "rm1"]] under [constraints]')
        groups[kind] = tuple(tuple(g) for g in value)
    return groups


def _secret(where: Location, doc: dict[str, Any]) -> bytes:
    """The shared secret's bytes: `secret`, or the environment variable named by `secret_env`
    (its bytes as they are: a secret taken from /dev/urandom need not be UTF-8 text).  Both
    given is refused: one of them would be ignored, silently (a secret changed in the
    environment and not in the file, say)."""
    write = 'secret_env = "ASSAY_SECRET" (or secret = "...", at least 16 characters)'
    secret = _text(where, doc, "secret", write)
    env = _text(where, doc, "secret_env", write)
    if secret is not None and env is not None:
        raise UsageError("the deployment gives both secret and secret_env: one would be "
                         "ignored", where, [f"keep only {write}"])
    if secret is None and env is not None:
        secret = os.environ.get(env)
        if secret is None:
            raise UsageError(f"environment variable {env} (secret_env) is not set", where)
    if secret is None or len(secret) < 16:
        raise UsageError("the deployment needs a shared secret of at least 16 characters",
                         where, [f"add {write}"])
    # (the bytes of the environment: os.environ decodes them with surrogateescape)
    return secret.encode("utf-8", "surrogateescape")


def load_deployment(path: str | Path) -> Deployment:
    """Read and check a deployment file: every field of the type it must have (an error
    names the file, the field, what was found and what to write instead), every instance
    on one node, each node at its own address."""
    p = Path(path)
    where = Location(str(p))
    try:
        doc = tomllib.loads(p.read_bytes().decode("utf-8"))      # TOML is UTF-8
    except OSError as e:
        raise UsageError(f"cannot read deployment {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"the deployment is not UTF-8 text: {e}", where) from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"the deployment is not valid TOML: {e}", where) from None
    except RecursionError:
        raise UsageError("the deployment is not valid TOML: nested too deeply", where) from None
    _unknown(where, "", doc, _TOP)
    spec = _text(where, doc, "spec", 'spec = "path/to/spec.py" (relative to this file)')
    if not spec:
        raise UsageError("the deployment names no spec", where, ['add spec = "path/to/spec.py"'])
    spec_path = spec if os.path.isabs(spec) else str((p.parent / spec).resolve())
    system = _text(where, doc, "system", 'system = "system" (the system function\'s name)')
    secret = _secret(where, doc)
    params = _params(where, doc.get("params", {}))
    nodes, placement = _nodes(where, doc.get("nodes"))
    groups = _constraints(where, doc.get("constraints", {}))
    return Deployment(p, spec_path, system, params, secret, nodes, placement,
                      groups["together"], groups["apart"])


def check_placement(dep: Deployment, instances: list[str]) -> None:
    """Every instance on exactly one node, every constraint respected; else `UsageError`."""
    where = Location(str(dep.path))
    for inst in instances:
        if inst not in dep.placement:
            raise UsageError(f"instance {inst!r} is not placed on any node", where,
                             [f"add it to the instances of one of: {', '.join(dep.nodes)}"])
    for inst, node in dep.placement.items():
        if inst not in instances:
            raise UsageError(f"node {node!r} hosts {inst!r}, which the system does not have",
                             where, [f"instances: {', '.join(instances)}"])
    for kind, groups in (("together", dep.together), ("apart", dep.apart)):
        for group in groups:
            for i in group:
                if i not in instances:
                    raise UsageError(f"constraint {kind}{list(group)} names {i!r}, which the "
                                     "system does not have", where,
                                     [f"instances: {', '.join(instances)}"])
    for group in dep.together:
        nodes = {dep.placement.get(i, "?") for i in group}
        if len(nodes) > 1:
            raise UsageError(f"constraint together{list(group)} does not hold: they are on "
                             f"{', '.join(sorted(nodes))}", where)
    for group in dep.apart:
        seen: dict[str, str] = {}
        for i in group:
            n = dep.placement.get(i, "?")
            if n in seen:
                raise UsageError(f"constraint apart{list(group)} does not hold: {seen[n]!r} "
                                 f"and {i!r} are both on {n!r}", where)
            seen[n] = i


def placed(dep: Deployment, system: Any) -> Deployment:
    """`dep` for `system`, with a composite placed whole: a composite's name in a node's
    `instances` places every instance inside it (`shard0` places `shard0.primary`,
    `shard0.backup`, ...), and in a constraint stands for all of them (`together`: all on
    one node; `apart`: no instance of one on a node with an instance of another).  Then
    `check_placement`; a `UsageError` for anything wrong."""
    composites = getattr(system, "composites", {})
    if not composites or not any(
            i in composites for i in (*dep.placement, *(i for g in dep.together for i in g),
                                      *(i for g in dep.apart for i in g))):
        check_placement(dep, list(system.instances))
        _check_local_hops(dep, system)
        return dep
    where = Location(str(dep.path))

    def expand(name: str) -> tuple[str, ...]:
        c = composites.get(name)
        return c.instances if c is not None else (name,)

    nodes: dict[str, NodeSpec] = {}
    placement: dict[str, str] = {}
    for n, spec in dep.nodes.items():
        insts = tuple(i for name in spec.instances for i in expand(name))
        nodes[n] = NodeSpec(spec.name, spec.host, spec.port, insts)
        for inst in insts:
            if inst in placement:
                raise UsageError(f"instance {inst!r} is placed on both {placement[inst]!r} "
                                 f"and {n!r}", where,
                                 ["a composite's name places every instance inside it; to "
                                  "place them apart, list them one by one"])
            placement[inst] = n
    apart: list[tuple[str, ...]] = []
    for group in dep.apart:
        if not any(i in composites for i in group):
            apart.append(group)
            continue
        seen: dict[str, str] = {}          # node -> the member of the group on it
        for member in group:
            for n in sorted({placement.get(i, "?") for i in expand(member)}):
                if n in seen and seen[n] != member:
                    raise UsageError(f"constraint apart{list(group)} does not hold: "
                                     f"{seen[n]!r} and {member!r} both have instances on "
                                     f"{n!r}", where)
                seen[n] = member
    together = tuple(tuple(i for name in g for i in expand(name)) for g in dep.together)
    out = replace(dep, nodes=nodes, placement=placement, together=together, apart=tuple(apart))
    check_placement(out, list(system.instances))
    _check_local_hops(out, system)
    return out


def _check_local_hops(dep: Deployment, system: Any) -> None:
    """In a chain of interceptors (`connect(..., via=[A, B])`) the hop from an endpoint to its
    own interceptor is in-process in the model (`assay.model.interceptor`: never lost,
    duplicated or reordered, whatever `--faults`): both on one node, or what `check` proved
    of the chain is not what runs."""
    for hop in getattr(system, "hops", ()):
        a, b = hop.a.instance, hop.b.instance
        na, nb = dep.placement.get(a), dep.placement.get(b)
        if hop.local and na != nb:
            raise UsageError(f"{a!r} (on {na!r}) and {b!r} (on {nb!r}) are an endpoint and "
                             "the interceptor next to it in a chain, on different nodes",
                             Location(str(dep.path)),
                             ["in the model they talk in-process (the chain's link is "
                              "between its interceptors): place them on one node, e.g. "
                              f'[constraints] together = [["{a}", "{b}"]]'])


def json_params(dep: Deployment) -> dict[str, Any]:
    return dict(dep.params)
