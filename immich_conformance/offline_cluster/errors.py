"""The one error type of the offline cluster: every message names the cause and the fix."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Something a person can fix kept the offline cluster from building, starting or stopping."""
