"""The sandbox CA and server certificate files: what a TLS client needs to trust exactly one server."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from .support import edge_env


def test_the_command_writes_a_ca_and_a_server_certificate_for_the_names(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "immich_conformance.tls", "--dir", str(tmp_path / "tls"),
                             "--dns", "team.cloudflareaccess.test", "--dns", "alt.example.test", "--ip", "127.0.0.1"],
                            capture_output=True, text=True, timeout=30, env=edge_env())
    assert result.returncode == 0, result.stderr
    ca = x509.load_pem_x509_certificate((tmp_path / "tls" / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((tmp_path / "tls" / "cert.pem").read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["team.cloudflareaccess.test", "alt.example.test"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert stat.S_IMODE((tmp_path / "tls" / "key.pem").stat().st_mode) == 0o600


def test_the_command_refuses_a_certificate_without_names(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "immich_conformance.tls", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=30, env=edge_env())
    assert result.returncode == 2 and "--dns" in result.stderr and "Traceback" not in result.stderr
