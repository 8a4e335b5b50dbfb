"""`pytest features/` and `pytest`: the suite's plugin (targets, diagnostics) and the scenarios' step definitions."""

pytest_plugins = [
    "pytester",
    "immich_conformance.pytest_plugin",
    "steps.context",
    "steps.lan_steps",
    "steps.external_steps",
    "steps.origin_steps",
    "steps.upload_steps",
    "steps.body_steps",
    "steps.websocket_steps",
    "steps.dns_steps",
    "steps.cluster_steps",
]
