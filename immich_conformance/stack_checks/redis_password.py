"""Redis asks for a password, taken from a Secret, and the Immich server gives the same one.

The network policies keep other pods away from Redis only where the CNI enforces them; the password keeps them out
everywhere. Redis must run with ``--requirepass $(VAR)`` where VAR comes from a Secret (never the password itself in
the manifest), its probes that use redis-cli must authenticate (REDISCLI_AUTH or ``-a``), and immich-server's
REDIS_PASSWORD must come from that same Secret key.
"""

from __future__ import annotations

import re
from typing import Any

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.stack_design import PROBES, SERVER

CHECK = "redis-password"
REDIS = "immich-redis"
SECRET = "immich-redis-password"
KEY = "REDIS_PASSWORD"
CLIS = ("redis-cli", "valkey-cli")
CLI_AUTH_ENV = "REDISCLI_AUTH"
EXPANSION = re.compile(r"\$\((?P<var>[A-Za-z_][A-Za-z0-9_]*)\)")
CLI_PASSWORD_OPTION = re.compile(r"(?:^|\s)(?:-a|--pass)(?:\s|$)")
GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}$")
FIX = f"--requirepass $({KEY}) in its args, with env {KEY} from Secret {SECRET} key {KEY}"


def _secret_key(var: dict[str, Any] | None) -> tuple[str, str] | None:
    """(Secret name, key) an env var takes its value from, None when it is not from a Secret."""
    key_ref = ((var or {}).get("valueFrom") or {}).get("secretKeyRef")
    if not isinstance(key_ref, dict):
        return None
    return str(key_ref.get("name")), str(key_ref.get("key"))


def _shown(secret: tuple[str, str]) -> str:
    """A Secret key as the person wrote it: the generated name without kustomize's hash suffix."""
    return f"Secret {GENERATED_SUFFIX.sub('', secret[0])} key {secret[1]}"


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(v.get("name")): v for v in container.get("env") or []}


def _from_secret(env: dict[str, dict[str, Any]], name: str, secret: tuple[str, str]) -> bool:
    """Whether env var ``name`` holds the Secret key ``secret``: taken from it, or ``$(VAR)`` of a var that is."""
    var = env.get(name)
    if _secret_key(var) == secret:
        return True
    expansion = EXPANSION.fullmatch(str((var or {}).get("value", "")))
    return bool(expansion) and expansion["var"] != name and _secret_key(env.get(expansion["var"])) == secret


def _password_secret(subject: str, container: dict[str, Any]) -> tuple[tuple[str, str] | None, list[Finding]]:
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if "--requirepass" not in argv or argv.index("--requirepass") + 1 >= len(argv):
        return None, [Finding(CHECK, subject, "Redis runs without a password: on a cluster whose CNI ignores the "
                                              f"network policies any pod could use it; give it {FIX}")]
    value = argv[argv.index("--requirepass") + 1]
    expansion = EXPANSION.fullmatch(value)
    if expansion is None:
        return None, [Finding(CHECK, subject, "the Redis password is written in the manifest (--requirepass with a "
                                              f"literal value); give it {FIX}")]
    secret = _secret_key(_env(container).get(expansion["var"]))
    if secret is None:
        return None, [Finding(CHECK, subject, f"--requirepass takes $({expansion['var']}), which is not taken from a "
                                              f"Secret (secretKeyRef) in container {container.get('name')}; give it "
                                              f"{FIX}")]
    return secret, []


def _unauthenticated_probes(subject: str, container: dict[str, Any], secret: tuple[str, str]) -> list[Finding]:
    findings = []
    env = _env(container)
    for probe_name in PROBES:
        command = " ".join(str(c) for c in ((container.get(probe_name) or {}).get("exec") or {}).get("command") or [])
        if not any(cli in command for cli in CLIS):
            continue
        if CLI_PASSWORD_OPTION.search(command) or _from_secret(env, CLI_AUTH_ENV, secret):
            continue
        findings.append(Finding(CHECK, subject, f"container {container.get('name')} {probe_name} runs redis-cli "
                                                f"without the password (Redis answers NOAUTH): set env "
                                                f"{CLI_AUTH_ENV} from {_shown(secret)}"))
    return findings


def check_redis_password(m: Manifests) -> list[Finding]:
    redis = m.pod_template(REDIS)
    if redis is None or not redis.containers(init=False):
        return [Finding(CHECK, f"Deployment/{REDIS}", "no Redis in the stack")]
    container = redis.containers(init=False)[0]
    secret, findings = _password_secret(redis.name, container)
    if secret is None:
        return findings
    findings += _unauthenticated_probes(redis.name, container, secret)
    server = m.pod_template(SERVER)
    server_container = next((c for c in server.containers(init=False) if c.get("name") == SERVER), None) \
        if server else None
    if server is None or server_container is None:
        return findings + [Finding(CHECK, f"Deployment/{SERVER}", f"no {SERVER} container in the stack")]
    var = _env(server_container).get(KEY)
    if var is None:
        findings.append(Finding(CHECK, server.name, f"{KEY} is not set, so Immich cannot use Redis (NOAUTH): take it "
                                                    f"from {_shown(secret)}, as Redis does"))
    elif _secret_key(var) != secret:
        source = _secret_key(var)
        findings.append(Finding(CHECK, server.name, f"{KEY} comes from {_shown(source) if source else 'no Secret'}, "
                                                    f"but Redis's password from {_shown(secret)}: take it from the "
                                                    f"same key"))
    return findings
