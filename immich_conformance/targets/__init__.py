"""Targets: the one place that knows where the stack under test runs and how to reach each part of it."""

from .base import Endpoint, LogMarks, Target, TargetUnsupported

TARGET_NAMES = ("sandbox", "cluster", "live")

__all__ = ["TARGET_NAMES", "Endpoint", "LogMarks", "Target", "TargetUnsupported"]
