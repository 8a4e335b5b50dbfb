"""The kernel's process accounting (``acct(2)``) for the length of a run: one record for every process that ends, with
its parent, its start time, its CPU time and its command name, however short it lived.

``acct`` is machine-wide and has one file: turning it on here switches the machine's accounting, if any, to a file
of the benchmark's, and turning it off afterwards leaves accounting off. Needs root (``CAP_SYS_PACCT``); the kernel
refuses it in a container without that capability. Python has no binding for it and Debian's ``acct`` package
only wraps the same call (``accton``) around a fixed log file, so it is called through ``ctypes``; records are
Linux's ``struct acct_v3`` (``<linux/acct.h>``). A record's CPU time is in hundredths of a second, rounded down:
processes of a few milliseconds each lose up to a hundredth.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

RECORD = struct.Struct("<BBHIIIIIIf8H16s")  # struct acct_v3: 64 bytes
VERSION = 3
AHZ = 100  # the unit of ac_utime and ac_stime: Linux writes them in USER_HZ ticks
IN_USE_ENV = "IMMICH_CONFORMANCE_PROCESS_ACCOUNTING"  # set by the benchmark for the suite it runs


@dataclass(frozen=True)
class Exited:
    """A process that ended: its pid, its parent's, its start (s since the epoch), its CPU time (s), its command."""

    pid: int
    ppid: int
    started: int
    cpu: float
    comm: str


def comp_t(value: int) -> int:
    """A ``comp_t``: 13 bits of mantissa, 3 bits of base-8 exponent."""
    return (value & 0x1FFF) << (3 * (value >> 13))


def parse(data: bytes) -> list[Exited]:
    """The records of an accounting file (version 3; others are skipped)."""
    found = []
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        _flag, version, _tty, _exit, _uid, _gid, pid, ppid, btime, _etime, utime, stime, *_rest, comm = \
            RECORD.unpack_from(data, offset)
        if version & 0x7F == VERSION:
            found.append(Exited(pid, ppid, btime, (comp_t(utime) + comp_t(stime)) / AHZ,
                                comm.split(b"\0", 1)[0].decode(errors="replace")))
    return found


class ProcessAccounting:
    """Between ``on()`` and ``off()`` the kernel accounts every process that ends into ``path``; ``records()``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on(self) -> None:
        self.path.touch(mode=0o600)
        self._acct(os.fsencode(self.path))

    def off(self) -> None:
        self._acct(None)

    @staticmethod
    def _acct(path: bytes | None) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.acct(path) != 0:
            code = ctypes.get_errno()
            hint = " (it needs root)" if code == errno.EPERM else ""
            raise OSError(code, f"the kernel's process accounting could not be turned {'on' if path else 'off'}: "
                                f"{os.strerror(code)}{hint}")

    def records(self) -> list[Exited]:
        return parse(self.path.read_bytes())
