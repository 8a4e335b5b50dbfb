"""What the cluster target checks before its first change, against a cluster that answers as a real one would
(a stand-in answering the suite's reads): a namespace or object without the suite's mark, a node port or host folder
already in use. Each check is shown failing and passing; nothing is ever applied or deleted here."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from immich_conformance.targets.cluster import ClusterSetupError, ClusterTarget
from immich_conformance.targets.kinds import CLUSTER_SCOPED, KIND_NAMES, MANAGED_BY, OWNER
from immich_conformance.targets.node_claims import TEST_DATA_MARKER
from immich_conformance.targets.ownership import prune
from immich_conformance.targets.stack_source import Placement, StackSource, ensure_test_secrets

KINDS = {**{plural: kind for kind, plural in (*KIND_NAMES.items(), *CLUSTER_SCOPED.items())}, "pods": "Pod"}


@dataclass
class ClusterState:
    """Answers the suite's reads from a list of objects (as the API server would) and records every kubectl
    command that would change something."""

    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    changes: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, *args: str, namespaced: bool = True, **_: Any) -> subprocess.CompletedProcess[str]:
        self.changes.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    def find(self, kind: str, name: str, *, namespaced: bool = True) -> dict[str, Any] | None:
        found = [o for o in self.objects if o["kind"] == KINDS[kind] and o["metadata"]["name"] == name
                 and (not namespaced or o["metadata"].get("namespace") == self.namespace)]
        return found[0] if found else None

    def items(self, kind: str, selector: str | None = None, *, all_namespaces: bool = False,
              namespaced: bool = True) -> list[dict[str, Any]]:
        items = [o for o in self.objects if o["kind"] == KINDS[kind]]
        if namespaced and not all_namespaces:
            items = [o for o in items if o["metadata"].get("namespace") == self.namespace]
        if selector:
            wanted = "!=" not in selector
            items = [o for o in items if ((o["metadata"].get("labels") or {}).get(MANAGED_BY) == OWNER) == wanted]
        return items


def obj(kind: str, name: str, namespace: str | None = "immich", owned: bool = False, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {MANAGED_BY: OWNER} if owned else {}}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta, **extra}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    ensure_test_secrets(lambda message: None)
    return StackSource("ci").render()


def target_on(state: ClusterState, tmp_path: Path, placement: Placement | None = None) -> ClusterTarget:
    target = ClusterTarget(kubeconfig=None, offline=True, placement=placement or Placement(state.namespace))
    target.kube = state  # type: ignore[assignment]
    return target


def placed(docs: list[dict], tmp_path: Path, namespace: str = "immich") -> tuple[Placement, list[dict]]:
    placement = Placement(namespace, PurePosixPath(tmp_path / "scratch"))
    return placement, placement.apply_to(docs)


def test_a_namespace_without_the_mark_stops_the_run_naming_it(docs: list[dict], tmp_path: Path) -> None:
    state = ClusterState("immich", [obj("Namespace", "immich", None), obj("Deployment", "immich-server")])
    placement, manifests = placed(docs, tmp_path)
    with pytest.raises(ClusterSetupError, match=r"namespace immich exists and was not made by the suite.*"
                                                r"Nothing was changed.*--namespace immich-conformance --scratch"):
        target_on(state, tmp_path, placement)._check_free(manifests)
    assert state.changes == []


def test_an_admission_policy_without_the_mark_stops_the_run(docs: list[dict], tmp_path: Path) -> None:
    """The stack's cluster-scoped objects (its Pod Security admission policy) are checked like its namespace."""
    state = ClusterState("immich", [obj("ValidatingAdmissionPolicy", "immich-pod-security", None)])
    placement, manifests = placed(docs, tmp_path)
    with pytest.raises(ClusterSetupError, match=r"validatingadmissionpolicies/immich-pod-security exist\(s\) and was "
                                                r"not made by the suite.*Nothing was changed"):
        target_on(state, tmp_path, placement)._check_free(manifests)
    assert state.changes == []


def test_beside_another_namespace_the_admission_policy_has_a_name_and_binding_of_its_own(docs: list[dict],
                                                                                          tmp_path: Path) -> None:
    state = ClusterState("immich-conformance", [obj("ValidatingAdmissionPolicy", "immich-pod-security", None),
                                                obj("ValidatingAdmissionPolicyBinding", "immich-pod-security", None)])
    placement, manifests = placed(docs, tmp_path, "immich-conformance")
    policies = {d["kind"]: d for d in manifests if d["kind"] in CLUSTER_SCOPED}
    assert policies["ValidatingAdmissionPolicy"]["metadata"]["name"] == "immich-conformance-pod-security"
    binding = policies["ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == "immich-conformance-pod-security"
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "immich-conformance"}}
    assert all("namespace" not in d["metadata"] for d in policies.values())
    target_on(state, tmp_path, placement)._check_free(manifests)  # the person's own policy is not in the way


def test_an_object_without_the_mark_in_the_suites_namespace_stops_the_run(docs: list[dict], tmp_path: Path) -> None:
    state = ClusterState("immich", [obj("Namespace", "immich", None, owned=True),
                                    obj("Deployment", "immich-server", owned=True),
                                    obj("Secret", "someones-token")])
    placement, manifests = placed(docs, tmp_path)
    with pytest.raises(ClusterSetupError, match=r"holds objects it did not make \(secrets/someones-token\)"):
        target_on(state, tmp_path, placement)._check_free(manifests)
    assert state.changes == []


def test_the_suites_own_namespace_from_an_earlier_run_is_accepted(docs: list[dict], tmp_path: Path) -> None:
    state = ClusterState("immich", [obj("Namespace", "immich", None, owned=True),
                                    obj("Deployment", "immich-server", owned=True),
                                    obj("ConfigMap", "kube-root-ca.crt"), obj("ServiceAccount", "default")])
    placement, manifests = placed(docs, tmp_path)
    exists, folders = target_on(state, tmp_path, placement)._check_free(manifests)
    assert exists and folders["nas"] == tmp_path / "scratch" / "nas" / "immich"
    assert state.changes == []


def test_a_node_port_held_by_another_namespace_stops_the_run(docs: list[dict], tmp_path: Path) -> None:
    taken = obj("Service", "photos", "someone", spec={"ports": [{"port": 80, "nodePort": 30283}]})
    state = ClusterState("immich", [taken])
    placement, manifests = placed(docs, tmp_path)
    with pytest.raises(ClusterSetupError, match=r"node port 30283 \(Service immich-server\) is already taken by "
                                                r"Service someone/photos"):
        target_on(state, tmp_path, placement)._check_free(manifests)
    # beside it, in another namespace, the cluster chooses the ports: no clash
    placement, manifests = placed(docs, tmp_path, "immich-test")
    target_on(ClusterState("immich-test", [taken]), tmp_path, placement)._check_free(manifests)


def test_a_host_folder_with_data_the_suite_did_not_make_stops_the_run(docs: list[dict], tmp_path: Path) -> None:
    placement, manifests = placed(docs, tmp_path)
    nas = tmp_path / "scratch" / "nas" / "immich"
    nas.mkdir(parents=True)
    (nas / "photo.jpg").write_bytes(b"someone's photo")
    with pytest.raises(ClusterSetupError, match=rf"{nas} exists and was not made by the suite"):
        target_on(ClusterState("immich"), tmp_path, placement)._check_free(manifests)
    assert (nas / "photo.jpg").read_bytes() == b"someone's photo"
    nas.with_name(nas.name + TEST_DATA_MARKER).write_text("")
    target_on(ClusterState("immich"), tmp_path, placement)._check_free(manifests)


def test_a_host_folder_mounted_by_a_pod_elsewhere_stops_the_run(docs: list[dict], tmp_path: Path) -> None:
    placement, manifests = placed(docs, tmp_path, "immich-test")
    pod = obj("Pod", "immich-server-abc", "immich", spec={"volumes": [
        {"name": "library", "hostPath": {"path": str(tmp_path / "scratch" / "nas")}}]})
    with pytest.raises(ClusterSetupError, match=r"is in use by pod immich/immich-server-abc"):
        target_on(ClusterState("immich-test", [pod]), tmp_path, placement)._check_free(manifests)


def test_prune_deletes_only_the_suites_objects_the_new_release_lacks() -> None:
    state = ClusterState("immich", [obj("ConfigMap", "gone-abc", owned=True), obj("ConfigMap", "kept", owned=True),
                                    obj("ConfigMap", "someones")])
    was = [obj("ConfigMap", "gone-abc"), obj("ConfigMap", "kept")]
    deleted = prune(state, keep=[obj("ConfigMap", "kept")], was=was)  # type: ignore[arg-type]
    assert [str(ref) for ref in deleted] == ["configmaps/gone-abc"]
    assert state.changes == [("delete", "configmaps", "gone-abc", "--wait=false", "--ignore-not-found")]
