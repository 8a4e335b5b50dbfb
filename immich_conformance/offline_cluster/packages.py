"""The Debian packages the offline cluster needs, installed when missing.

Run as ``python -m immich_conformance.offline_cluster.packages`` (``--check`` only lists what is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from .errors import ClusterError

# What each package is for.
CLUSTER_PACKAGES: dict[str, str] = {
    "iptables": "kube-proxy's Service rules, the kubelet's chains and the egress guard",
    "iproute2": "the node's veth pair, routes and network namespaces",
    "gcc": "runc (cgo) and the static pod sandbox binary",
    "libc6-dev": "static C library for the pod sandbox binary",
    "libseccomp-dev": "runc's seccomp support (containerd's default profile needs it)",
    "pkg-config": "finding libseccomp when runc is built",
    "util-linux": "mount and umount for the teardown",
    "procps": "sysctl",
    "ipset": "kube-router's NetworkPolicy controller (its address sets)",
}
# Only the cluster's own tests need these.
TEST_PACKAGES: dict[str, str] = {
    "busybox-static": "the test image (a shell, httpd, wget and nslookup in one static binary)",
    "skopeo": "reading the project's image archives with another tool than ours (tests/images)",
}


def is_installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip().endswith(" installed")


def missing(packages: Sequence[str]) -> list[str]:
    return [p for p in packages if not is_installed(p)]


def ensure_packages(packages: Sequence[str] | None = None, *, progress: Callable[[str], None] = print) -> list[str]:
    """Install the packages that are missing (``apt-get update`` first); returns what was installed."""
    wanted = list(CLUSTER_PACKAGES) if packages is None else list(packages)
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        raise ClusterError("the offline cluster needs a Debian or Ubuntu machine (dpkg-query and apt-get not found)")
    todo = missing(wanted)
    if not todo:
        return []
    if os.geteuid() != 0:
        raise ClusterError(f"Debian packages {', '.join(todo)} are missing and installing them needs root: "
                           f"run as root, or `sudo apt-get install -y {' '.join(todo)}` first")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    progress("apt-get update")
    _run_apt(["apt-get", "update"], env, "apt-get update")
    progress(f"apt-get install {' '.join(todo)}")
    _run_apt(["apt-get", "install", "-y", "--no-install-recommends", *todo], env, "apt-get install")
    still = missing(todo)
    if still:
        raise ClusterError(f"apt-get reported success but {', '.join(still)} is still not installed: "
                           "check the machine's apt sources")
    return todo


def _run_apt(argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ClusterError(f"{what} failed (exit {result.returncode}); fix the machine's apt sources or network "
                           f"to the Debian mirror and run it again. Last lines:\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m immich_conformance.offline_cluster.packages",
                                     description="Install the Debian packages the offline cluster needs.")
    parser.add_argument("--check", action="store_true", help="only list the missing packages (exit 1 if any)")
    parser.add_argument("--with-tests", action="store_true", help="also the packages the cluster's tests use")
    args = parser.parse_args(argv)
    wanted = list(CLUSTER_PACKAGES) + (list(TEST_PACKAGES) if args.with_tests else [])
    if args.check:
        todo = missing(wanted)
        for name in todo:
            print(f"missing: {name} ({CLUSTER_PACKAGES.get(name) or TEST_PACKAGES.get(name)})")
        return 1 if todo else 0
    try:
        installed = ensure_packages(wanted)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"installed: {' '.join(installed)}" if installed else "all packages present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
