"""``immich-conformance``: the commands a person runs besides pytest and locust."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .procs import GiveUp, WaitTimeout

SUPERVISION_INTERVAL = 0.5
COMPONENT_DIED = 3


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Start the embedded sandbox, print how to reach it, and keep it up until Ctrl-C (or until one of its components
    exits: then the death is said with the component's last log lines, the rest stopped, and the exit status is 3)."""
    from .targets.sandbox import Sandbox
    from .targets.spec import TargetSetupError, TargetSpec, open_target

    stop = threading.Event()
    # Every way a person or a script stops it; SIGINT too, which a shell's background job inherits as ignored.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    spec = TargetSpec(workdir=Path(args.workdir) if args.workdir else None, keep=args.keep,
                      sandbox_nas=Path(args.nas) if args.nas else None)
    try:
        sandbox = open_target(spec, lambda message: print(f"[sandbox] {message}", flush=True))
    except TargetSetupError as exc:
        print(f"immich-conformance sandbox: {exc.reason}", file=sys.stderr)
        return 2
    assert isinstance(sandbox, Sandbox)
    with contextlib.closing(sandbox):
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
        while not stop.wait(SUPERVISION_INTERVAL):
            if deaths := sandbox.dead_components():
                for death in deaths:
                    print(f"immich-conformance sandbox: {death.summary}; {death.details}", file=sys.stderr, flush=True)
                print("immich-conformance sandbox: stopping the rest", file=sys.stderr, flush=True)
                return COMPONENT_DIED
    return 0


def cmd_check_stack(args: argparse.Namespace) -> int:
    """Render overlays and run the static proof (schema, our own checks, checkov), exactly as the tests do."""
    from .stack_checks import StackConfigError
    from .stack_checks.proof import prove_stack

    try:
        proofs = prove_stack(args.overlay, Path(args.stack) if args.stack else None,
                             example_secrets=args.example_secrets, checkov=not args.skip_checkov)
    except StackConfigError as exc:
        print(f"immich-conformance check-stack: {exc}", file=sys.stderr)
        return 1
    for proof in proofs:
        if proof.error is not None or proof.rendered is None:
            print(f"{proof.overlay}: {proof.error}", file=sys.stderr)
            continue
        verdict = "ok" if not proof.findings else f"{len(proof.findings)} problem(s)"
        print(f"{proof.overlay}: {len(proof.rendered.documents)} objects rendered, {verdict}")
        for finding in proof.findings:
            print(f"  {finding}")
    return 0 if proofs and all(p.holds for p in proofs) else 1


def cmd_rehearse(args: argparse.Namespace) -> int:
    """Rehearse an Immich upgrade on a cluster or in containers: deploy, test, seed, upgrade, verify."""
    from .rehearsal.deployments import ContainersDeployment, Deployment
    from .rehearsal.releases import RehearsalError
    from .rehearsal.restored import RestoreRequest
    from .rehearsal.run import cluster_deployment, rehearse
    from .targets.stack_source import STACK_NAMESPACE, Placement

    try:
        if (args.library or args.library_sample is not None) and not args.restore:
            raise RehearsalError("--library and --library-sample go with --restore BACKUP")
        restore = RestoreRequest(Path(args.restore), Path(args.library) if args.library else None,
                                 args.library_sample) if args.restore else None
        deployment: Deployment
        if args.runtime == "cluster":
            print("immich-conformance rehearse: --runtime cluster is deprecated, use --target cluster",
                  file=sys.stderr)
        target = args.target or ("sandbox" if args.runtime == "containers" else "cluster")
        if target == "sandbox" and args.runtime != "containers":
            raise RehearsalError("--target sandbox rehearses in the stack's containers: add --runtime containers")
        if target == "cluster" and args.runtime == "containers":
            raise RehearsalError("--runtime containers runs the stack as containers, not on a cluster: drop "
                                 "--target cluster, or --runtime")
        if target == "sandbox":
            cluster_only = [flag for flag, given in (("--cluster", args.cluster), ("--kubeconfig", args.kubeconfig),
                                                     ("--overlay", args.overlay), ("--keep-cluster", args.keep_cluster),
                                                     ("--namespace", args.namespace), ("--scratch", args.scratch))
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
            placement = Placement(args.namespace or STACK_NAMESPACE,
                                  PurePosixPath(args.scratch) if args.scratch else None)
            deployment = cluster_deployment(kubeconfig=Path(kubeconfig) if kubeconfig else None,
                                            offline=args.cluster == "offline", keep_cluster=args.keep_cluster,
                                            overlay=args.overlay or "ci", placement=placement)
        return rehearse(ref_from=args.ref_from, ref_to=args.ref_to, deployment=deployment,
                        reports=Path(args.reports), locust_seconds=args.locust_seconds, restore=restore)
    except RehearsalError as exc:
        print(f"immich-conformance rehearse: {exc}", file=sys.stderr)
        return 2


def cmd_verify_backup(args: argparse.Namespace) -> int:
    """Restore an Immich database backup into a throwaway release and report whether it restores."""
    from .backups.backup_file import BackupProblem
    from .backups.verify import verify_backup
    from .targets.spec import TargetSetupError, TargetSpec, TargetSpecError

    spec = TargetSpec(runtime=args.runtime, images=args.images)
    try:
        report = verify_backup(Path(args.backup), Path(args.library) if args.library else None, spec=spec,
                               progress=lambda message: print(f"[verify-backup] {message}", flush=True))
    except (BackupProblem, TargetSpecError, TargetSetupError, OSError) as exc:
        print(f"immich-conformance verify-backup: {exc}", file=sys.stderr)
        return 1
    print(report.render(), flush=True)
    if report.failure:
        print(f"immich-conformance verify-backup: {report.failure}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    # Options are spelled out in full: argparse would otherwise take a prefix for the one option it starts (doctor's
    # `--nas /mnt/nas` read as `--nas-fstype /mnt/nas`).
    parser = argparse.ArgumentParser(prog="immich-conformance", description=__doc__, allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command = functools.partial(commands.add_parser, allow_abbrev=False)
    sandbox = add_command("sandbox", help="run the embedded sandbox stack until Ctrl-C")
    sandbox.add_argument("--workdir", help="folder for the sandbox's state (default: a new temporary folder)")
    sandbox.add_argument("--keep", action="store_true", help="keep the folder (logs, NAS, database) after stopping")
    sandbox.add_argument("--nas", help="the NAS folder, e.g. a mount point (default: in the work folder); it must be "
                                       "empty and is emptied when the sandbox stops")
    sandbox.set_defaults(func=cmd_sandbox)
    check = add_command("check-stack", help="render stack/ overlays and run the static checks")
    check.add_argument("overlay", nargs="*", help="overlay names under stack/overlays (default: all)")
    check.add_argument("--example-secrets", action="store_true",
                       help="render with the committed *.env.example files instead of your secret files")
    check.add_argument("--skip-checkov", action="store_true", help="leave out the checkov scan (slowest part)")
    check.add_argument("--stack", metavar="DIR", help="the stack folder to check (default: stack/ of this checkout)")
    check.set_defaults(func=cmd_check_stack)
    from .doctor.command import add_arguments as doctor_arguments
    from .doctor.command import run as doctor_run

    doctor = add_command("doctor", help="check the node the stack is about to run on (before you apply)",
                         description="Check a node (this one, or one over SSH) against an overlay's settings: "
                                     "the NAS mount, boot ordering, the internal drive, the node, DNS. One "
                                     "line per check; exit 1 on any fail.")
    doctor_arguments(doctor)
    doctor.set_defaults(func=doctor_run)
    from .offline_cluster.__main__ import add_arguments as cluster_arguments
    from .offline_cluster.__main__ import run as cluster_run

    cluster = add_command("cluster", help="the offline single-node cluster: up, down, status",
                          description="A real Kubernetes built from the Go module proxy and run on this "
                                      "machine (root). `up` prints the kubeconfig path.")
    cluster_arguments(cluster)
    cluster.set_defaults(func=cluster_run)
    rehearse = add_command("rehearse", help="rehearse an Immich upgrade on a cluster or in containers (the "
                                            "pre-upgrade gate)",
                           description="Deploy the from-release, run the scenarios, seed assets, upgrade to "
                                       "the to-release, verify every asset byte for byte and run the "
                                       "scenarios again. Exit 0 only if every phase passed.")
    rehearse.add_argument("--from", dest="ref_from", help="a git ref of this repository or an Immich tag (vX.Y.Z); "
                                                          "with the double's builds (--cluster offline, --images "
                                                          "local) the default is the pinned release")
    rehearse.add_argument("--to", dest="ref_to", help="as --from; with the double's builds the default is the next "
                                                      "double release")
    rehearse.add_argument("--target", choices=["cluster", "sandbox"],
                          help="where to deploy, as for pytest: cluster (the default) or sandbox (the stack's "
                               "containers under Docker: needs --runtime containers)")
    rehearse.add_argument("--runtime", choices=["containers", "cluster"],
                          help="containers: the stack's containers under Docker, as for pytest (implies --target "
                               "sandbox). 'cluster' is the old spelling of --target cluster")
    rehearse.add_argument("--images", choices=["pinned", "local"],
                          help="with --runtime containers: pinned (the real Immich images of each release; the "
                               "default) or local (builds of the project's Immich double)")
    rehearse.add_argument("--keep-sandbox", action="store_true",
                          help="with --runtime containers: keep the run's work folder and containers' logs")
    rehearse.add_argument("--cluster", choices=["offline"], help="build and run a cluster on this machine")
    rehearse.add_argument("--kubeconfig", help="an existing kind or k3s cluster (default KUBECONFIG)")
    rehearse.add_argument("--reports", default="reports/rehearsal", help="where the JUnit and HTML reports go")
    rehearse.add_argument("--keep-cluster", action="store_true",
                          help="leave the offline cluster running (one that was already up is always left running)")
    rehearse.add_argument("--overlay", help="on a cluster: the overlay under stack/overlays to deploy (default ci: "
                                            "the project's images; kind-edge-standin: real Immich)")
    rehearse.add_argument("--namespace", help="on a cluster: the namespace to rehearse in (default immich). Another "
                                              "one rehearses beside the Immich in immich: node ports chosen by the "
                                              "cluster, host folders under --scratch; nothing of immich changes")
    rehearse.add_argument("--scratch", help="on a cluster: a node folder for the rehearsal's NAS, database and model "
                                            "cache (needed with --namespace)")
    rehearse.add_argument("--locust-seconds", type=int, default=0,
                          help="end with a locust upload run of this many seconds on the upgraded stack")
    rehearse.add_argument("--restore", metavar="BACKUP",
                          help="rehearse on your own data: restore BACKUP (an immich-db-backup-….sql.gz) into the "
                               "from-release through Immich's maintenance flow, then check users, albums, assets and "
                               "Immich's integrity report before and after the upgrade (instead of the scenarios)")
    rehearse.add_argument("--library", metavar="DIR",
                          help="with --restore: the library the backup belongs to (Immich's media location); only "
                               "read: a copy goes into the deployment's NAS folder")
    rehearse.add_argument("--library-sample", metavar="N", type=int,
                          help="with --library: copy only N assets per user, chosen from the backup's asset list")
    rehearse.set_defaults(func=cmd_rehearse)
    verify = add_command("verify-backup", help="restore an Immich database backup into a throwaway release "
                                               "and say whether it restores",
                         description="Restore BACKUP (an immich-db-backup-….sql.gz from Immich's backups/ "
                                     "folder) through Immich's own maintenance flow into a throwaway "
                                     "release, then report its versions, users, assets, albums and, with "
                                     "--library, what Immich's integrity checks find. A real Immich backup "
                                     "needs --runtime containers (the real images). Exit 0 only if it "
                                     "restores cleanly.")
    verify.add_argument("backup", metavar="BACKUP", help="the backup file")
    verify.add_argument("--library", metavar="DIR", help="the library it belongs to (Immich's media location); "
                                                         "only read: a copy goes into the release")
    verify.add_argument("--runtime", choices=["processes", "containers"], default="processes",
                        help="processes (default): the sandbox, the Immich API double, for the double's backups; "
                             "containers: the stack's containers under Docker, for a real Immich backup")
    verify.add_argument("--images", choices=["pinned", "local"], default="pinned",
                        help="with --runtime containers: pinned (default: the real Immich images the stack pins) "
                             "or local (the project's builds of the double)")
    verify.set_defaults(func=cmd_verify_backup)
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
