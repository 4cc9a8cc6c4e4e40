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
unknown instance or node, or a missing secret is a `UsageError` naming the file.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import Location, UsageError

CONTROL = "control"      # the name control connections (state, status, stop) authenticate as


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


def load_deployment(path: str | Path) -> Deployment:
    p = Path(path)
    where = Location(str(p))
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as e:
        raise UsageError(f"cannot read deployment {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"the deployment is not valid TOML: {e}", where) from None
    spec = doc.get("spec")
    if not isinstance(spec, str):
        raise UsageError("the deployment names no spec", where, ['add spec = "path/to/spec.py"'])
    spec_path = spec if os.path.isabs(spec) else str((p.parent / spec).resolve())
    secret = doc.get("secret")
    if secret is None and "secret_env" in doc:
        secret = os.environ.get(str(doc["secret_env"]))
        if secret is None:
            raise UsageError(f"environment variable {doc['secret_env']} (secret_env) is not set",
                             where)
    if not isinstance(secret, str) or len(secret) < 16:
        raise UsageError("the deployment needs a shared secret of at least 16 characters",
                         where, ['add secret_env = "ASSAY_SECRET" (or secret = "...")'])
    params = {k: str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in dict(doc.get("params", {})).items()}
    nodes: dict[str, NodeSpec] = {}
    placement: dict[str, str] = {}
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise UsageError("the deployment has no [nodes.<name>] sections", where)
    addresses: dict[tuple[str, int], str] = {}
    for name, n in raw_nodes.items():
        try:
            if not isinstance(n, dict):
                raise TypeError(name)
            node = NodeSpec(name, str(n.get("host", "127.0.0.1")), int(n["port"]),
                            tuple(str(i) for i in n.get("instances", ())))
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"node {name!r} needs host, port and instances", where,
                             [f'write [nodes.{name}] with host = "127.0.0.1", port = 7101, '
                              'instances = [...]']) from None
        if name == CONTROL:
            raise UsageError(f"a node may not be named {CONTROL!r}: control connections (state, "
                             "status, stop) authenticate as that name", where,
                             ["rename the node"])
        if not 1 <= node.port <= 65535:
            raise UsageError(f"node {name!r} has port {node.port}, not in 1..65535", where)
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
    cons = doc.get("constraints", {})
    groups: dict[str, tuple[tuple[str, ...], ...]] = {}
    for kind in ("together", "apart"):
        raw = cons.get(kind, []) if isinstance(cons, dict) else None
        if not isinstance(raw, list) or not all(
                isinstance(g, list) and all(isinstance(i, str) for i in g) for g in raw):
            raise UsageError(f"constraint {kind} must be a list of lists of instance names",
                             where, [f'e.g. {kind} = [["rm0", "rm1"]]'])
        groups[kind] = tuple(tuple(g) for g in raw)
    together, apart = groups["together"], groups["apart"]
    return Deployment(p, spec_path, doc.get("system"), params, secret.encode(), nodes,
                      placement, together, apart)


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


def json_params(dep: Deployment) -> dict[str, Any]:
    return dict(dep.params)
