"""A private certificate authority and server certificates for the sandbox, written as PEM files.

The sandbox serves some names over TLS on loopback (the Access team domain's JWKS, for one). Clients there verify the
server against the CA file written here instead of the system store, so nothing is trusted beyond the run.
Keys are ECDSA P-256: quick to make and accepted by Python's ssl, Envoy and curl alike.

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

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DAYS = 30


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        return _key_pem(self.private_key)


@dataclass(frozen=True)
class CertificateAuthority(IssuedCertificate):
    """A self-signed CA that issues server certificates."""

    @classmethod
    def generate(cls, common_name: str = "Sandbox CA", *, days: int = DEFAULT_DAYS) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate=cert, private_key=key)

    def issue(
        self,
        dns_names: Sequence[str],
        *,
        ip_addresses: Sequence[str] = (),
        days: int = DEFAULT_DAYS,
    ) -> IssuedCertificate:
        """A server certificate for ``dns_names`` (and ``ip_addresses``), signed by this CA."""
        if not dns_names and not ip_addresses:
            raise ValueError("a server certificate needs at least one DNS name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        common_name = dns_names[0] if dns_names else ip_addresses[0]
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        now = _now()
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.private_key, hashes.SHA256())
        )
        return IssuedCertificate(certificate=cert, private_key=key)


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
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.generate(ca_name, days=days)
    leaf = ca.issue(dns_names, ip_addresses=ip_addresses, days=days)
    files = TlsFiles(ca_file=directory / "ca.pem", cert_file=directory / "cert.pem", key_file=directory / "key.pem")
    files.ca_file.write_bytes(ca.certificate_pem())
    files.cert_file.write_bytes(leaf.certificate_pem())
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(leaf.private_key_pem())
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
