"""The third verdict: real TCP connections, opened from inside a running pod of each source workload to each
destination Service's name and port. One ``kubectl exec`` per source runs every probe of that source (bash's
``/dev/tcp``, which every image of the stack has, with ``timeout``); every source and every probe at once.

A connection that opens is allowed. One refused or timed out is denied; so that "nothing listens" is not read as
"a policy denies", every destination port is first opened from inside its own pod, on 127.0.0.1 (which no policy
restricts): a port nothing listens on stops the matrix with its name.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from immich_conformance.kube import Kube, KubeError

from .matrix import Pair

CONNECT_SECONDS = 3


def _script(targets: list[tuple[str, int]]) -> str:
    """Every connection at once (a denied one may take up to CONNECT_SECONDS before it counts as shut), each
    answering one line; ``wait`` until all have."""
    lines = []
    for host_name, port in sorted(set(targets)):
        host = shlex.quote(host_name)
        lines.append(f"(if timeout {CONNECT_SECONDS} bash -c ': > /dev/tcp/{host}/{port}' 2>/dev/null; "
                     f"then echo 'open {host} {port}'; else echo 'shut {host} {port}'; fi) &")
    return "\n".join([*lines, "wait"])


def _connect_from(kube: Kube, workload: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:
    result = kube.run("exec", f"deployment/{workload}", "--", "bash", "-c", _script(targets), check=False,
                      timeout=30 + CONNECT_SECONDS * len(targets))
    seen = {}
    for line in result.stdout.splitlines():
        word, host, port = (line.split() + ["", "", ""])[:3]
        if word in ("open", "shut") and port.isdigit():
            seen[(host, int(port))] = word == "open"
    missing = [f"{host}:{port}" for host, port in targets if (host, port) not in seen]
    if missing:
        raise KubeError(f"could not probe from {workload} (exit {result.returncode}: "
                        f"{result.stderr.strip()[-300:]}); no answer for {', '.join(missing)}")
    return seen


def connects(kube: Kube, source: str, service: str, port: int) -> bool:
    """Whether one connection from a pod of ``source`` to ``service``:``port`` opens."""
    return _connect_from(kube, source, [(service, port)])[(service, port)]


def require_listening(kube: Kube, pairs: list[Pair]) -> None:
    """Every destination port answers inside its own pod; else a denied probe would mean nothing."""
    by_destination: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pair in pairs:
        by_destination[pair.destination].append(("127.0.0.1", pair.target_port))
    silent = [f"{workload}:{port}" for workload, targets in by_destination.items()
              for (_, port), is_open in _connect_from(kube, workload, targets).items() if not is_open]
    if silent:
        raise KubeError(f"nothing listens on {', '.join(sorted(silent))} inside its own pod: a probe to it would "
                        "be refused whatever the policies say. Wait until the stack is Ready, or drop the port "
                        "from its Service")


def probe(kube: Kube, pairs: list[Pair]) -> list[bool]:
    """Whether each pair's connection opened, in order."""
    require_listening(kube, pairs)
    by_source: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_source[pair.source].append(pair)
    # Every source at once too: a denied connection may take the whole CONNECT_SECONDS before it counts as shut.
    with ThreadPoolExecutor(max_workers=len(by_source)) as pool:
        running = {source: pool.submit(_connect_from, kube, source, [(p.service, p.port) for p in its_pairs])
                   for source, its_pairs in by_source.items()}
        seen = {source: answer.result() for source, answer in running.items()}
    return [seen[p.source][(p.service, p.port)] for p in pairs]
