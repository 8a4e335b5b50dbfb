"""The cluster's certificate authority, every component's certificate, the service-account signing keys, and the
kubeconfig files that use them. Made afresh by each `up`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import layout

VALIDITY = dt.timedelta(days=365)
SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True)
class CertSpec:
    name: str  # file stem under pki/
    common_name: str
    organization: str | None = None
    usages: tuple[x509.ObjectIdentifier, ...] = (CLIENT,)
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()


API_DNS = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{layout.CLUSTER_DOMAIN}", "localhost", layout.NODE_NAME)

CERTS: tuple[CertSpec, ...] = (
    CertSpec("etcd-server", "etcd", usages=(SERVER, CLIENT), dns=("localhost",), ips=("127.0.0.1",)),
    CertSpec("apiserver-etcd-client", "kube-apiserver-etcd-client"),
    CertSpec("apiserver", "kube-apiserver", usages=(SERVER,), dns=API_DNS,
             ips=(layout.NODE_IP, "127.0.0.1", layout.API_SERVICE_IP)),
    CertSpec("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    CertSpec("admin", "immich-conformance-admin", "system:masters"),
    CertSpec("controller-manager", "system:kube-controller-manager"),
    CertSpec("scheduler", "system:kube-scheduler"),
    CertSpec("kube-proxy", "system:kube-proxy"),
    CertSpec("kubelet-client", f"system:node:{layout.NODE_NAME}", "system:nodes"),
    CertSpec("kubelet-server", layout.NODE_NAME, usages=(SERVER,), dns=(layout.NODE_NAME,), ips=(layout.NODE_IP,)),
)


class Pki:
    """Paths of the files under ``<state>/pki``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def ca_cert(self) -> Path:
        return self.cert("ca")

    @property
    def ca_key(self) -> Path:
        return self.key("ca")

    @property
    def sa_key(self) -> Path:
        return self.dir / "service-account.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "service-account.pub"

    def create(self) -> None:
        """A new CA, a certificate for every component, and the service-account key pair."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "immich-conformance-cluster-ca")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(self.ca_key, ca_key)
        self.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        for spec in CERTS:
            key = ec.generate_private_key(ec.SECP256R1())
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)]
            if spec.organization:
                attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization))
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name(attrs)).issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                             crl_sign=False, content_commitment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage(list(spec.usages)), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
            )
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ips]
            if sans:
                builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            cert = builder.sign(ca_key, hashes.SHA256())
            _write_key(self.key(spec.name), key)
            self.cert(spec.name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write_key(self.sa_key, sa_key)
        self.sa_pub.write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def kubeconfig(self, path: Path, user: str, server: str) -> Path:
        """A kubeconfig for ``user`` (a certificate name under pki/) talking to ``server``."""
        text = f"""apiVersion: v1
kind: Config
clusters:
- name: immich-conformance
  cluster:
    server: {server}
    certificate-authority: {self.ca_cert}
users:
- name: {user}
  user:
    client-certificate: {self.cert(user)}
    client-key: {self.key(user)}
contexts:
- name: immich-conformance
  context:
    cluster: immich-conformance
    user: {user}
current-context: immich-conformance
"""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, 0o600)
        return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
