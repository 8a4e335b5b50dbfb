"""One offline cluster for the whole session, brought up by the first test that needs it and taken down after the
last; a test that must start from a stopped machine takes it down and brings it back."""

from __future__ import annotations

from immich_conformance.kube import Kube
from immich_conformance.offline_cluster import ClusterInfo, OfflineCluster
from immich_conformance.targets.kinds import CLUSTER_SCOPED, OWNED_SELECTOR


class SharedCluster:
    def __init__(self) -> None:
        self.cluster = OfflineCluster(progress=lambda msg: print(f"[shared cluster] {msg}", flush=True))
        self.found_up = self.cluster.status().running
        self.info: ClusterInfo | None = None

    def up(self) -> ClusterInfo:
        self.info = self.cluster.up()
        return self.info

    def clear_namespaces(self) -> None:
        """Delete the namespaces the suite's earlier tests left (those with its mark), and their Pod Security
        policies and bindings (cluster-scoped, with its mark): the node has room for two stacks, and a module starts
        from the cluster as a fresh one is."""
        assert self.info is not None, "the shared cluster is not up"
        kube = Kube(self.info.kubeconfig, "default")
        names = [n["metadata"]["name"] for n in kube.items("namespaces", OWNED_SELECTOR, namespaced=False)]
        if names:
            self.cluster.progress(f"deleting the namespaces earlier tests left: {' '.join(names)}")
            kube.delete_namespaces(*names)
        kube.run("delete", ",".join(CLUSTER_SCOPED.values()), "-l", OWNED_SELECTOR, namespaced=False)

    def stop_for(self, why: str) -> bool:
        """Take the session's cluster down for a test that needs a stopped machine; False (and nothing done) when it
        was up before the session: it is not the session's to stop."""
        if self.found_up:
            return False
        if self.info is not None:
            self.cluster.progress(f"down for {why}; back up afterwards")
            self.cluster.down()
        return True

    def restore(self) -> None:
        """Up again if the session had it up before ``stop_for``."""
        if self.info is not None:
            self.up()

    def release(self) -> None:
        """Down, when the session brought it up."""
        if self.info is not None and not self.found_up:
            self.cluster.down()
