"""Cluster DNS: CoreDNS answering cluster names only (no forwarding), its image and its manifests."""

from __future__ import annotations

import shutil
from pathlib import Path

from immich_conformance import versions
from immich_conformance.images.oci import ImageConfig, PackedImage, pack_image

from . import layout

COREDNS_IMAGE = f"registry.k8s.io/coredns/coredns:{versions.CLUSTER_COREDNS_VERSION}"

# The NXDOMAIN template sits in a `.:53` block of its own: in the cluster block it would run before `kubernetes`
# (plugin order) and hide every cluster name. There is no `forward`: no query ever leaves the machine.
COREFILE = f"""{layout.CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {layout.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        ttl 30
    }}
    cache 30
    reload
    loadbalance
}}
.:53 {{
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""

# The plugins COREFILE uses, and only those, are compiled in: CoreDNS's own way to build with chosen plugins (a
# `main` package importing them and calling `coremain.Run`; coredns.io, "compile time enabling or disabling
# plugins"). The release's full plugin list drags in cloud SDKs and tracers this DNS never runs; leaving them out
# takes about a third off CoreDNS's cold build (measured alone on 2 cores: 125 s -> 79 s). The order in which the
# plugins run is still CoreDNS's own list (`dnsserver.Directives`), untouched. A test holds this list to COREFILE.
PLUGINS = ("cache", "errors", "health", "kubernetes", "loadbalance", "ready", "reload", "template")


def main_package() -> str:
    """The ``main.go`` of a CoreDNS with PLUGINS only."""
    imports = "".join(f'\t_ "github.com/coredns/coredns/plugin/{name}"\n' for name in PLUGINS)
    return ("// CoreDNS with the plugins of the offline cluster's Corefile only.\npackage main\n\nimport (\n"
            f'{imports}\n\t"github.com/coredns/coredns/coremain"\n)\n\nfunc main() {{\n\tcoremain.Run()\n}}\n')


def coredns_archive(cache_dir: Path, coredns_binary: Path) -> Path:
    """CoreDNS's image archive under ``cache_dir``, packed the first time (the build cache is keyed by version)."""
    archive = cache_dir / "images" / f"coredns-{versions.CLUSTER_COREDNS_VERSION}.tar"
    if not archive.is_file() or archive.stat().st_mtime < coredns_binary.stat().st_mtime:
        coredns_image(cache_dir, coredns_binary, archive)
    return archive


def coredns_image(cache_dir: Path, coredns_binary: Path, archive: Path | None = None) -> PackedImage:
    archive = archive or cache_dir / "images" / "coredns.tar"
    rootfs = cache_dir / "images" / "coredns-rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    (rootfs / "etc" / "coredns").mkdir(parents=True)
    shutil.copy2(coredns_binary, rootfs / "coredns")
    try:
        return pack_image(rootfs, COREDNS_IMAGE,
                          ImageConfig(entrypoint=["/coredns"], cmd=["-conf", "/etc/coredns/Corefile"],
                                      exposed_ports=[53]),
                          archive)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def manifests() -> str:
    """ServiceAccount, RBAC, ConfigMap, Deployment and the kube-dns Service at the cluster DNS address."""
    return f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
{_indent(COREFILE, 4)}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  replicas: 1
  selector:
    matchLabels: {{k8s-app: kube-dns}}
  template:
    metadata:
      labels: {{k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      containers:
      - name: coredns
        image: {COREDNS_IMAGE}
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {{name: dns, containerPort: 53, protocol: UDP}}
        - {{name: dns-tcp, containerPort: 53, protocol: TCP}}
        readinessProbe:
          httpGet: {{path: /ready, port: 8181}}
          periodSeconds: 2
        livenessProbe:
          httpGet: {{path: /health, port: 8080}}
          initialDelaySeconds: 10
        resources:
          requests: {{cpu: 50m, memory: 40Mi}}
          limits: {{memory: 170Mi}}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: [ALL]
            add: [NET_BIND_SERVICE]
        volumeMounts:
        - {{name: config, mountPath: /etc/coredns, readOnly: true}}
      volumes:
      - name: config
        configMap:
          name: coredns
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  selector: {{k8s-app: kube-dns}}
  clusterIP: {layout.DNS_SERVICE_IP}
  ports:
  - {{name: dns, port: 53, protocol: UDP}}
  - {{name: dns-tcp, port: 53, protocol: TCP}}
"""
