"""The doctor over SSH (testinfra's ssh:// backend) against an sshd the test starts on 127.0.0.1 with a throwaway
host key and authorized key: the same verdicts as run locally on the same fake root; an SSH server that is gone is
said in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from immich_conformance.cli import main
from immich_conformance.procs import ManagedProcess, free_port, port_open

from .fakeroot import FakeRoot

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").is_file() else None)
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it

pytestmark = pytest.mark.skipif(SSHD is None or shutil.which("ssh") is None,
                                reason="needs openssh-server and openssh-client (setup.sh installs them)")


@dataclass
class SshNode:
    spec: str
    config: Path
    server: ManagedProcess


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "doctor-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


@pytest.fixture
def ssh_node(tmp_path: Path) -> Iterator[SshNode]:
    folder = tmp_path / "ssh"
    folder.mkdir()
    keygen(folder / "host_key")
    keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder / 'host_key'}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {folder / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
    (folder / "ssh_config").write_text(f"""Host 127.0.0.1
  Port {port}
  IdentityFile {folder / 'client_key'}
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
""")
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    server = ManagedProcess("sshd", [str(SSHD), "-D", "-e", "-f", str(folder / "sshd_config")],
                            log_path=folder / "sshd.log").start()
    try:
        server.wait_ready(lambda: port_open(port), timeout=20)
        yield SshNode(f"ssh://root@127.0.0.1:{port}", folder / "ssh_config", server)
    finally:
        server.stop()


def doctor_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    status = main(["doctor", "--json", *args])
    out, err = capsys.readouterr()
    assert out, err
    return status, json.loads(out)


def without_free_space(result: dict) -> dict:
    return {**result, "found": ""} if result["check"].endswith("free-space") else result


def test_over_ssh_the_verdicts_are_those_of_a_local_run(fake: FakeRoot, ssh_node: SshNode,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fake.replace_in("/etc/fstab", "nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0\n", "")
    local_status, local = doctor_json(capsys, "--root", str(fake.root))
    status, remote = doctor_json(capsys, "--root", str(fake.root), "--host", ssh_node.spec,
                                 "--ssh-config", str(ssh_node.config))
    assert remote["host"] == ssh_node.spec
    # Free space may move between the two runs (others write to the same disk); everything else is the same.
    assert [without_free_space(r) for r in remote["results"]] == [without_free_space(r) for r in local["results"]]
    assert (status, local_status) == (1, 1)
    assert [r["check"] for r in remote["results"] if r["verdict"] == "fail"] == ["boot-mount"]
    assert "Accepted publickey for root" in ssh_node.server.log_tail(200)


def test_an_ssh_node_that_does_not_answer_is_said_in_one_line(fake: FakeRoot, ssh_node: SshNode,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ssh_node.server.stop()
    status = main(["doctor", "--root", str(fake.root), "--host", ssh_node.spec, "--ssh-config", str(ssh_node.config)])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith(f"immich-conformance doctor: cannot reach {ssh_node.spec}: ")
    assert len(err.strip().splitlines()) == 1 and "Connection refused" in err
