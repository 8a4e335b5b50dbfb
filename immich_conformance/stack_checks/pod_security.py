"""Pod Security of the stack's namespace: what Pod Security admission cannot enforce there (baseline forbids the
hostPath volumes Immich needs) is refused by the stack's own ValidatingAdmissionPolicy, bound to that namespace."""

from __future__ import annotations

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, ref

ENFORCE = "pod-security.kubernetes.io/enforce"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
REFUSED = ("privileged", "hostNetwork", "hostPort", "capabilities")  # what the policy's validations must cover


def check_pod_security(m: Manifests) -> list[Finding]:
    findings = []
    namespaces = m.of_kind("Namespace")
    if not namespaces:
        return [Finding("pod-security", "Namespace", "the stack makes no Namespace to hold its Pod Security labels")]
    namespace = namespaces[0]
    name = namespace["metadata"]["name"]
    labels = namespace["metadata"].get("labels") or {}
    if labels.get(ENFORCE) not in ("privileged", "baseline", "restricted"):
        findings.append(Finding("pod-security", ref(namespace), f"no {ENFORCE} label: set the level the pods need "
                                                                "(privileged, for their hostPath volumes)"))
    policies = {p["metadata"]["name"]: p for p in m.of_kind("ValidatingAdmissionPolicy")}
    bindings = [b for b in m.of_kind("ValidatingAdmissionPolicyBinding")
                if (b.get("spec") or {}).get("policyName") in policies]
    if not policies or not bindings:
        findings.append(Finding("pod-security", name, "no ValidatingAdmissionPolicy bound to the namespace refuses "
                                                      "privileged pods: keep stack/base/pod-security/ in the overlay"))
        return findings
    for binding in bindings:
        spec = binding.get("spec") or {}
        selector = ((spec.get("matchResources") or {}).get("namespaceSelector") or {}).get("matchLabels") or {}
        if selector.get(NAMESPACE_NAME_LABEL) != name:
            findings.append(Finding("pod-security", ref(binding), f"binds the policy to namespace "
                                                                  f"{selector.get(NAMESPACE_NAME_LABEL)!r}, not the "
                                                                  f"stack's {name!r}: set its namespaceSelector"))
        if "Deny" not in (spec.get("validationActions") or []):
            findings.append(Finding("pod-security", ref(binding), "validationActions lacks Deny: a privileged pod "
                                                                  "would only be warned about"))
        policy = policies[spec["policyName"]]
        expressions = " ".join(v.get("expression", "") for v in (policy.get("spec") or {}).get("validations") or [])
        missing = [word for word in REFUSED if word not in expressions]
        if missing:
            findings.append(Finding("pod-security", ref(policy), f"no validation refuses {', '.join(missing)}"))
    return findings
