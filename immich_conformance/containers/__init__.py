"""The stack's Deployments as Docker containers on one private network (``--runtime containers``).

- ``translate``: the rendered manifests (``kubectl kustomize`` of an overlay) -> one container spec per Deployment:
  environment (ConfigMap and Secret references resolved), command and args, ports, readiness probe, volumes and
  security settings; Service names as network aliases; the ports the suite reaches, published on 127.0.0.1;
- ``engine``: the Docker engine (one message saying how to start one when none answers) and the egress guard;
- ``images``: the images the stack pins (used when present, else pulled) or the project's own (built, then
  ``docker load``-ed when Docker lacks them); another Immich release's images;
- ``run_folder``: the run's work folder: the stack rendered with the run's own secrets, the node's folders, each
  pod's own volumes;
- ``container_set``: the run's network and containers, started in parallel, replaced one at a time, their addresses
  and published ports;
- ``readiness``: each container's readiness probe run as the kubelet would, until all are Ready;
- ``watch``: the containers' logs and states, and which of them stopped;
- ``cleanup``: every container and network a run makes carries its labels; ``remove_run`` removes them, and runs
  whose process is gone are swept at the next start.

``immich_conformance.targets.containers`` puts these together behind the scenarios' Target. This package imports
``docker`` only where it talks to the engine: the translation has no dependency on it.
"""
