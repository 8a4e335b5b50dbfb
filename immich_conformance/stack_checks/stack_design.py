"""Names from the stack's design that the checks rely on: its workloads, the origin proxy's configuration folder,
where the photo library is mounted, and the probe kinds a container may have."""

SERVER = "immich-server"
MACHINE_LEARNING = "immich-machine-learning"
PROXY = "origin-proxy"
PROXY_CONFIG_DIR = "/etc/origin-proxy"
MEDIA_LOCATION = "/data"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
