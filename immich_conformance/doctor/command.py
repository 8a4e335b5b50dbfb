"""``immich-conformance doctor``: its arguments, and the report (one line per check, or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from ..stack_checks.rendering import StackConfigError
from .checks.dns import hosts_file_resolver
from .node import Node, NodeError
from .runner import run_checks
from .settings import from_overlay
from .verdicts import Result, Verdict

DEFAULT_OVERLAY = "k3s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overlay", default=DEFAULT_OVERLAY,
                        help="the overlay under stack/overlays whose settings the node must meet (default k3s)")
    parser.add_argument("--host", default="local://",
                        help="the node: local:// (default, this machine) or ssh://user@node[:port] (any "
                             "pytest-testinfra host spec)")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="read the node's files under DIR instead of / (a prepared fake root, for tests)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for CI)")
    parser.add_argument("--junitxml", metavar="FILE", help="also write a JUnit report (each check is a test)")
    parser.add_argument("--html", metavar="FILE", help="also write an HTML report (pytest-html)")
    parser.add_argument("--nas-fstype", action="append", default=[], metavar="TYPE",
                        help="a filesystem type the NAS may have besides NFS/SMB (e.g. ext4 for a USB disk)")
    parser.add_argument("--kubeconfig", help="list the cluster's Services with this kubeconfig on the node (default: "
                                             "k3s's own, when k3s is installed there)")
    parser.add_argument("--hosts-file", metavar="FILE",
                        help="resolve the public hostname from this hosts-format file (on this machine) instead of "
                             "the node's resolver, e.g. your LAN DNS's records")
    parser.add_argument("--ssh-config", help="an ssh_config file for --host ssh://")
    parser.add_argument("--ssh-identity-file", help="the private key for --host ssh://")
    parser.add_argument("--stack", metavar="DIR", help="the stack folder (default: stack/ of this checkout)")


def summary(results: list[Result]) -> dict[str, int]:
    counts = Counter(r.verdict.value for r in results)
    return {v.value: counts.get(v.value, 0) for v in Verdict}


def report(args: argparse.Namespace, results: list[Result]) -> dict:
    return {"overlay": args.overlay, "host": args.host, "root": args.root, "summary": summary(results),
            "results": [r.as_json() for r in results]}


def run(args: argparse.Namespace) -> int:
    """Exit 0 when no check fails, 1 when one does, 2 when the doctor cannot start (overlay, host)."""
    try:
        settings = from_overlay(args.overlay, Path(args.stack) if args.stack else None,
                                nas_fstypes=tuple(args.nas_fstype), kubeconfig=args.kubeconfig)
        resolver = hosts_file_resolver(Path(args.hosts_file)) if args.hosts_file else None
        node = Node(args.host, args.root, ssh_config=args.ssh_config, ssh_identity_file=args.ssh_identity_file)
        node.resolver = resolver
        try:
            results = run_checks(node, settings, junitxml=Path(args.junitxml) if args.junitxml else None,
                                 html=Path(args.html) if args.html else None)
        finally:
            node.close()
    except (StackConfigError, NodeError) as exc:
        print(f"immich-conformance doctor: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report(args, results), indent=2))
    else:
        for result in results:
            print(result.line())
        counts = summary(results)
        print(f"{counts['pass']} passed, {counts['warn']} warned, {counts['fail']} failed "
              f"(overlays/{args.overlay} on {args.host}{'' if args.root == '/' else f' under {args.root}'})")
    return 1 if any(r.verdict is Verdict.FAIL for r in results) else 0
