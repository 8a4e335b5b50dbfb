"""The suite's mark on what it owns, and the kinds of object it knows, as manifests and as kubectl name them.

Kept apart from ``ownership`` (which reads the cluster) so that what renders manifests, as every target does, needs
no Kubernetes client: the sandbox and containers runs start without importing it.
"""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER = "immich-conformance"
OWNED_SELECTOR = f"{MANAGED_BY}={OWNER}"
# The namespaced kinds the stack (or a person) puts in a namespace, as kubectl names them; what every namespace
# gets by itself (the default ServiceAccount, the root CA ConfigMap) is not anyone's.
NAMESPACED_KINDS = ("deployments.apps", "statefulsets.apps", "daemonsets.apps", "jobs.batch", "cronjobs.batch",
                    "services", "configmaps", "secrets", "persistentvolumeclaims", "networkpolicies.networking.k8s.io",
                    "serviceaccounts", "roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
                    "ingresses.networking.k8s.io")
EVERY_NAMESPACE_HAS = {("configmaps", "kube-root-ca.crt"), ("serviceaccounts", "default")}
# kind as in a manifest -> kind as kubectl names it above
KIND_NAMES = {"Deployment": "deployments.apps", "StatefulSet": "statefulsets.apps", "DaemonSet": "daemonsets.apps",
              "Job": "jobs.batch", "CronJob": "cronjobs.batch", "Service": "services", "ConfigMap": "configmaps",
              "Secret": "secrets", "PersistentVolumeClaim": "persistentvolumeclaims",
              "NetworkPolicy": "networkpolicies.networking.k8s.io", "ServiceAccount": "serviceaccounts",
              "Role": "roles.rbac.authorization.k8s.io", "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
              "Ingress": "ingresses.networking.k8s.io", "Namespace": "namespaces"}
# Cluster-scoped objects of the stack (kind as in a manifest -> as kubectl names it). Each is named for the namespace
# it serves (stack_source.Placement), so two placements never share one; prune leaves them alone.
CLUSTER_SCOPED = {
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies.admissionregistration.k8s.io",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings.admissionregistration.k8s.io",
}
