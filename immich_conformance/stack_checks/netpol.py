"""A NetworkPolicy evaluator (networking.k8s.io/v1 semantics) and the stack's traffic matrix.

A connection is allowed when the source's egress and the destination's ingress both allow it. A pod is
isolated in a direction once any policy selecting it names that direction in policyTypes; then only what
some rule of such a policy allows gets through. Endpoints outside the cluster are addresses and match only
ipBlock peers. Named ports resolve against the destination pod's declared container ports.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests

DEFAULT_LAN_CIDR = "192.168.1.0/24"
INTERNET_ADDRESS = "203.0.113.10"  # TEST-NET-3: stands for any public address; never contacted
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass
class Endpoint:
    name: str
    namespace: str | None = None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)
    address: str | None = None
    ports: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, protocol) -> number


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _peer_matches(peer: dict[str, Any], policy_namespace: str, endpoint: Endpoint,
                  namespace_labels: dict[str, dict[str, str]]) -> bool:
    if "ipBlock" in peer:
        if endpoint.address is None:
            return False
        address = ipaddress.ip_address(endpoint.address)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block.get("cidr"), strict=False):
            return False
        return not any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if endpoint.namespace is None:
        return False
    if "namespaceSelector" in peer:
        labels = namespace_labels.get(endpoint.namespace, {NAMESPACE_LABEL: endpoint.namespace})
        if not label_selector_matches(peer["namespaceSelector"], labels):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or label_selector_matches(peer["podSelector"], endpoint.labels)


def _ports_match(rule_ports: list[dict[str, Any]] | None, port: int, protocol: str, destination: Endpoint) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.get("protocol") or "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, int) and wanted <= port <= int(entry.get("endPort") or wanted):
            return True
        if isinstance(wanted, str) and destination.ports.get((wanted, protocol)) == port:
            return True
    return False


class PolicySet:
    def __init__(self, policies: list[dict[str, Any]], namespace_labels: dict[str, dict[str, str]],
                 default_namespace: str) -> None:
        self.policies = policies
        self.namespace_labels = namespace_labels
        self.default_namespace = default_namespace

    def _namespace(self, policy: dict[str, Any]) -> str:
        return (policy.get("metadata") or {}).get("namespace") or self.default_namespace

    def _direction_allows(self, direction: str, subject: Endpoint, peer: Endpoint, port: int, protocol: str,
                          destination: Endpoint) -> bool:
        if subject.namespace is None:
            return True  # outside the cluster: no policy applies there
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        selecting = [p for p in self.policies if self._namespace(p) == subject.namespace
                     and label_selector_matches((p.get("spec") or {}).get("podSelector") or {}, subject.labels)
                     and direction in _policy_types(p)]
        if not selecting:
            return True
        for policy in selecting:
            for rule in (policy.get("spec") or {}).get(rules_key) or []:
                peers = rule.get(peers_key) or []
                peer_ok = not peers or any(_peer_matches(p, self._namespace(policy), peer, self.namespace_labels)
                                           for p in peers)
                if peer_ok and _ports_match(rule.get("ports"), port, protocol, destination):
                    return True
        return False

    def egress_allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._direction_allows("Egress", source, destination, port, protocol, destination)

    def ingress_allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._direction_allows("Ingress", destination, source, port, protocol, destination)

    def allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self.egress_allows(source, destination, port, protocol) and \
            self.ingress_allows(source, destination, port, protocol)


def pod_endpoints(m: Manifests) -> dict[str, Endpoint]:
    endpoints = {}
    for pod in m.pod_templates():
        ports = {(p.get("name"), p.get("protocol") or "TCP"): int(p["containerPort"])
                 for p in pod.ports() if p.get("name") and p.get("containerPort")}
        name = str((pod.owner.get("metadata") or {}).get("name"))
        endpoints[name] = Endpoint(name, pod.namespace, dict(pod.labels), None, ports)
    return endpoints


OTHER_POD = "another-pod"  # a pod with no policy of its own, as if added to the namespace later

# (source, destination, port, protocol, allowed, why). A denied flow between pods must be denied by the
# destination's ingress policies on their own: the source's egress policies are a second layer, not the only one.
TRAFFIC_MATRIX: list[tuple[str, str, int, str, bool, str]] = [
    ("cloudflared", "origin-proxy", 8080, "TCP", True, "the tunnel delivers to the origin proxy"),
    ("origin-proxy", "immich-server", 2283, "TCP", True, "the proxy forwards to Immich"),
    ("lan", "immich-server", 2283, "TCP", True, "the home network uses Immich through the NodePort"),
    ("immich-server", "immich-postgres", 5432, "TCP", True, "the server's database"),
    ("immich-server", "immich-redis", 6379, "TCP", True, "the server's job queue"),
    ("immich-server", "immich-machine-learning", 3003, "TCP", True, "the server's machine learning"),
    ("cloudflared", "internet", 7844, "TCP", True, "the tunnel connects to Cloudflare's edge"),
    ("origin-proxy", "internet", 443, "TCP", True, "the proxy fetches the Access signing keys"),
    ("immich-machine-learning", "internet", 443, "TCP", True, "machine learning downloads its models"),
    ("internet", "immich-server", 2283, "TCP", False, "the internet comes in only through the tunnel"),
    ("internet", "origin-proxy", 8080, "TCP", False, "the internet comes in only through the tunnel"),
    ("lan", "origin-proxy", 8080, "TCP", False, "the LAN path is the NodePort, not the proxy"),
    ("lan", "immich-postgres", 5432, "TCP", False, "the database is not on the network"),
    ("lan", "immich-redis", 6379, "TCP", False, "the job queue is not on the network"),
    ("lan", "immich-machine-learning", 3003, "TCP", False, "machine learning is not on the network"),
    ("cloudflared", "immich-server", 2283, "TCP", False, "the tunnel must not bypass the origin proxy"),
    ("cloudflared", "immich-postgres", 5432, "TCP", False, "the tunnel reaches the proxy only"),
    ("cloudflared", "lan", 445, "TCP", False, "the tunnel must not reach the home network"),
    ("origin-proxy", "immich-postgres", 5432, "TCP", False, "the proxy reaches Immich only"),
    ("origin-proxy", "immich-machine-learning", 3003, "TCP", False, "the proxy reaches Immich only"),
    ("immich-machine-learning", "immich-postgres", 5432, "TCP", False, "only the server uses the database"),
    ("immich-machine-learning", "lan", 445, "TCP", False, "machine learning must not reach the home network"),
    ("immich-redis", "immich-postgres", 5432, "TCP", False, "only the server uses the database"),
    ("immich-postgres", "internet", 443, "TCP", False, "the database has no business outside"),
    ("immich-server", "internet", 443, "TCP", False, "the server talks to its own services only"),
    ("immich-server", "cloudflared", 2000, "TCP", False, "nothing connects to the tunnel connector"),
    ("lan", "cloudflared", 2000, "TCP", False, "nothing connects to the tunnel connector"),
    (OTHER_POD, "immich-server", 2283, "TCP", False, "a pod added later gets nothing without its own policy"),
    (OTHER_POD, "immich-postgres", 5432, "TCP", False, "a pod added later gets nothing without its own policy"),
    (OTHER_POD, "origin-proxy", 8080, "TCP", False, "a pod added later gets nothing without its own policy"),
]
DNS_PORT = 53


def check_traffic_matrix(documents: list[dict[str, Any]], lan_cidr: str | None = None,
                         namespace: str = "immich") -> list[Finding]:
    m = Manifests(documents)
    lan_network = ipaddress.ip_network(lan_cidr or DEFAULT_LAN_CIDR, strict=False)
    lan_host = next(lan_network.hosts(), lan_network.network_address)
    endpoints = pod_endpoints(m)
    endpoints["lan"] = Endpoint("lan", address=str(lan_host))
    endpoints["internet"] = Endpoint("internet", address=INTERNET_ADDRESS)
    endpoints[OTHER_POD] = Endpoint(OTHER_POD, namespace, {"app.kubernetes.io/name": OTHER_POD})
    dns = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, None, {("dns", "UDP"): DNS_PORT})
    namespace_labels = {ns: {NAMESPACE_LABEL: ns} for ns in (namespace, "kube-system")}
    for doc in m.of_kind("Namespace"):
        name = (doc.get("metadata") or {}).get("name")
        namespace_labels[name] = {NAMESPACE_LABEL: name, **((doc.get("metadata") or {}).get("labels") or {})}
    policies = PolicySet(m.of_kind("NetworkPolicy"), namespace_labels, namespace)
    if not m.of_kind("NetworkPolicy"):
        return [Finding("network-policy", namespace, "the stack has no NetworkPolicy: every pod is open to all")]
    findings = []
    for source, destination, port, protocol, expected, why in TRAFFIC_MATRIX:
        if source not in endpoints or destination not in endpoints:
            missing = source if source not in endpoints else destination
            findings.append(Finding("network-policy", missing, f"no workload '{missing}' to check the flow for"))
            continue
        src, dst = endpoints[source], endpoints[destination]
        flow = f"{source} -> {destination}:{port}/{protocol}"
        allowed = policies.allows(src, dst, port, protocol)
        if allowed != expected:
            verdict = "allowed, but must be denied" if allowed else "denied, but must be allowed"
            findings.append(Finding("network-policy", flow, f"{verdict} ({why})"))
        elif not expected and dst.namespace is not None and policies.ingress_allows(src, dst, port, protocol):
            findings.append(Finding("network-policy", flow, f"the destination's ingress policies allow it; only the "
                                                            f"source's egress policy stops it ({why})"))
    for name, endpoint in endpoints.items():
        if name != OTHER_POD and endpoint.namespace is not None and not policies.allows(endpoint, dns, DNS_PORT, "UDP"):
            findings.append(Finding("network-policy", f"{name} -> kube-dns:53/UDP",
                                    "denied, but every pod must resolve Service names"))
    return findings
