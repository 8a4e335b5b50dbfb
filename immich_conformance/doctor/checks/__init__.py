"""Every check of the doctor, in the order they are run and printed."""

from __future__ import annotations

from . import boot, dns, internal_drive, nas, node_facts
from .base import Check

CHECKS: list[Check] = [*nas.CHECKS, *boot.CHECKS, *internal_drive.CHECKS, *node_facts.CHECKS, *dns.CHECKS]

__all__ = ["CHECKS", "Check"]
