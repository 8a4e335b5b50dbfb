"""A private certificate authority and one server certificate for the sandbox, written as PEM files (made by trustme).

The sandbox serves some names over TLS on loopback (the Access team domain's JWKS, for one). Clients there verify the
server against the CA file written here instead of the system store, so nothing is trusted beyond the run.
Keys are ECDSA P-256 (trustme's default): quick to make and accepted by Python's ssl, Envoy and curl alike.
The leaf's validity window is set here (``days``); the CA keeps trustme's own long window, which is harmless because
its key is never written, so it can sign nothing after this run.

Command line: ``python -m immich_conformance.tls --dir DIR --dns NAME [--dns NAME ...] [--ip 127.0.0.1]`` writes
``ca.pem``, ``cert.pem`` and ``key.pem`` into DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """Where a CA certificate and one server certificate with its key were written."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def write_server_files(
    directory: Path,
    dns_names: Sequence[str],
    *,
    ip_addresses: Sequence[str] = (),
    ca_name: str = "Sandbox CA",
    days: int = DEFAULT_DAYS,
) -> TlsFiles:
    """Make a fresh CA and a server certificate for the names; write ``ca.pem``, ``cert.pem``, ``key.pem``.

    The private key file is readable by its owner only. The CA's own key is not written: nothing else can be issued
    under this CA afterwards, so trusting ``ca.pem`` trusts exactly this one certificate.
    """
    if not dns_names and not ip_addresses:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    now = dt.datetime.now(dt.timezone.utc)
    ca = trustme.CA(organization_name=ca_name, path_length=0)
    leaf = ca.issue_cert(*dns_names, *ip_addresses, common_name=[*dns_names, *ip_addresses][0],
                         organization_name=ca_name, not_before=now - dt.timedelta(minutes=5),
                         not_after=now + dt.timedelta(days=days))
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(ca_file=directory / "ca.pem", cert_file=directory / "cert.pem", key_file=directory / "key.pem")
    files.ca_file.write_bytes(ca.cert_pem.bytes())
    files.cert_file.write_bytes(leaf.cert_chain_pems[0].bytes())
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(leaf.private_key_pem.bytes())
    os.chmod(files.key_file, 0o600)
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m immich_conformance.tls",
        description="Write a private CA (ca.pem) and a server certificate (cert.pem, key.pem) for the given names.",
    )
    parser.add_argument("--dir", required=True, type=Path, help="directory to write the PEM files into")
    parser.add_argument("--dns", action="append", default=[], help="a DNS name for the certificate (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="an IP address for the certificate (repeatable)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"validity in days (default {DEFAULT_DAYS})")
    args = parser.parse_args(argv)
    if not args.dns and not args.ip:
        parser.error("give at least one --dns NAME or --ip ADDRESS")
    for ip in args.ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            parser.error(f"--ip {ip!r} is not an IP address")
    try:
        files = write_server_files(args.dir, args.dns, ip_addresses=args.ip, days=args.days)
    except OSError as exc:
        print(f"error: cannot write the PEM files into {args.dir}: {exc}", file=sys.stderr)
        return 2
    print(f"CA: {files.ca_file}\ncertificate: {files.cert_file}\nkey: {files.key_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
