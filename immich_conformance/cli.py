"""``immich-conformance``: the commands a person runs besides pytest and locust."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .procs import GiveUp, WaitTimeout


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Start the embedded sandbox, print how to reach it, and keep it up until Ctrl-C."""
    from .targets.sandbox import Sandbox

    sandbox = Sandbox(Path(args.workdir) if args.workdir else None, keep=args.keep,
                      progress=lambda message: print(f"[sandbox] {message}", flush=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sandbox:
        token = sandbox.service_token_headers
        print(f"""
LAN (the NodePort):      {sandbox.lan.url}
public hostname:         {sandbox.external.url}  (send Host: {sandbox.public_hostname})
origin proxy:            {sandbox.origin.url}
Immich API key:          {sandbox.api_key}
Access service token:    {' '.join(f'{k}: {v}' for k, v in token.items())}
NAS library:             {sandbox.nas_root}
logs:                    {sandbox.logs}

Try: curl -H 'Host: {sandbox.public_hostname}' {sandbox.external.url}/api/server/ping   (redirected to Access)
Ctrl-C stops the sandbox{' and keeps its folder' if args.keep else ' and removes its folder'}.""", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def cmd_check_stack(args: argparse.Namespace) -> int:
    """Render overlays and run the static proof (schema, our cross-reference checks, checkov), as CI does."""
    from .stack_checks import StackConfigError, find_stack_dir, overlay_names, render_overlay, run_static_checks
    from .stack_checks.checkov_scan import CheckovUnavailable, run_checkov
    from .stack_checks.schema import validate_documents

    overlays = args.overlay or overlay_names(find_stack_dir())
    failures = 0
    for overlay in overlays:
        try:
            rendered = render_overlay(overlay, with_example_secrets=args.example_secrets)
        except StackConfigError as exc:
            print(f"{overlay}: {exc}", file=sys.stderr)
            failures += 1
            continue
        findings = validate_documents(rendered.documents) + run_static_checks(rendered)
        if not args.skip_checkov:
            try:
                report = run_checkov({overlay: rendered.text})[overlay]
                findings += report.findings()
            except CheckovUnavailable as exc:
                print(f"{overlay}: checkov not run: {exc}", file=sys.stderr)
                failures += 1
        verdict = "ok" if not findings else f"{len(findings)} problem(s)"
        print(f"{overlay}: {len(rendered.documents)} objects rendered, {verdict}")
        for finding in findings:
            print(f"  {finding}")
        failures += len(findings)
    return 1 if failures else 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    """Rehearse an Immich upgrade on a cluster or in containers: deploy, test, seed, upgrade, verify."""
    from .rehearsal.deployments import ContainersDeployment, Deployment
    from .rehearsal.releases import RehearsalError
    from .rehearsal.run import cluster_deployment, rehearse

    try:
        deployment: Deployment
        if args.runtime == "containers":
            cluster_only = [flag for flag, given in (("--cluster", args.cluster), ("--kubeconfig", args.kubeconfig),
                                                     ("--overlay", args.overlay), ("--keep-cluster", args.keep_cluster))
                            if given]
            if cluster_only:
                raise RehearsalError(f"{', '.join(cluster_only)}: for a cluster; --runtime containers takes --images "
                                     "(and --keep-sandbox)")
            deployment = ContainersDeployment(images=args.images or "pinned", keep=args.keep_sandbox)
        else:
            if args.images or args.keep_sandbox:
                raise RehearsalError("--images and --keep-sandbox go with --runtime containers; on a cluster the "
                                     "overlay (--overlay) says which images run")
            kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
            deployment = cluster_deployment(kubeconfig=Path(kubeconfig) if kubeconfig else None,
                                            offline=args.cluster == "offline", keep_cluster=args.keep_cluster,
                                            overlay=args.overlay or "ci")
        return rehearse(ref_from=args.ref_from, ref_to=args.ref_to, deployment=deployment,
                        reports=Path(args.reports), locust_seconds=args.locust_seconds)
    except RehearsalError as exc:
        print(f"immich-conformance rehearse: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="immich-conformance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sandbox = commands.add_parser("sandbox", help="run the embedded sandbox stack until Ctrl-C")
    sandbox.add_argument("--workdir", help="folder for the sandbox's state (default: a new temporary folder)")
    sandbox.add_argument("--keep", action="store_true", help="keep the folder (logs, NAS, database) after stopping")
    sandbox.set_defaults(func=cmd_sandbox)
    check = commands.add_parser("check-stack", help="render stack/ overlays and run the static checks")
    check.add_argument("overlay", nargs="*", help="overlay names under stack/overlays (default: all)")
    check.add_argument("--example-secrets", action="store_true",
                       help="render with the committed *.env.example files instead of your secret files")
    check.add_argument("--skip-checkov", action="store_true", help="leave out the checkov scan (slowest part)")
    check.set_defaults(func=cmd_check_stack)
    from .cluster.__main__ import add_arguments as cluster_arguments
    from .cluster.__main__ import run as cluster_run

    cluster = commands.add_parser("cluster", help="the offline single-node cluster: up, down, status",
                                  description="A real Kubernetes built from the Go module proxy and run on this "
                                              "machine (root). `up` prints the kubeconfig path.")
    cluster_arguments(cluster)
    cluster.set_defaults(func=cluster_run)
    rehearse = commands.add_parser("rehearse", help="rehearse an Immich upgrade on a cluster or in containers (the "
                                                    "pre-upgrade gate)",
                                   description="Deploy the from-release, run the scenarios, seed assets, upgrade to "
                                               "the to-release, verify every asset byte for byte and run the "
                                               "scenarios again. Exit 0 only if every phase passed.")
    rehearse.add_argument("--from", dest="ref_from", help="a git ref of this repository or an Immich tag (vX.Y.Z); "
                                                          "with the double's builds (--cluster offline, --images "
                                                          "local) the default is the pinned release")
    rehearse.add_argument("--to", dest="ref_to", help="as --from; with the double's builds the default is the next "
                                                      "double release")
    rehearse.add_argument("--runtime", choices=["cluster", "containers"], default="cluster",
                          help="where to deploy: a cluster (default), or the stack's containers under Docker")
    rehearse.add_argument("--images", choices=["pinned", "local"],
                          help="with --runtime containers: pinned (the real Immich images of each release; the "
                               "default) or local (builds of the project's Immich double)")
    rehearse.add_argument("--keep-sandbox", action="store_true",
                          help="with --runtime containers: keep the run's work folder and containers' logs")
    rehearse.add_argument("--cluster", choices=["offline"], help="build and run a cluster on this machine")
    rehearse.add_argument("--kubeconfig", help="an existing kind or k3s cluster (default KUBECONFIG)")
    rehearse.add_argument("--reports", default="reports/rehearsal", help="where the JUnit and HTML reports go")
    rehearse.add_argument("--keep-cluster", action="store_true", help="leave the offline cluster running")
    rehearse.add_argument("--overlay", help="on a cluster: the overlay under stack/overlays to deploy (default ci: "
                                            "the project's images; kind-edge-standin: real Immich)")
    rehearse.add_argument("--locust-seconds", type=int, default=0,
                          help="end with a locust upload run of this many seconds on the upgraded stack")
    rehearse.set_defaults(func=cmd_rehearse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (GiveUp, WaitTimeout, OSError, RuntimeError) as exc:
        print(f"immich-conformance {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
