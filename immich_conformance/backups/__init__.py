"""Immich database backups seen from outside: what a backup file says about itself, its restore through Immich's
own maintenance flow, a copy of the library it belongs to, and Immich's integrity checks on the result.

Reusable by ``verify-backup`` and the upgrade rehearsal: ``inspect_backup``, ``restore_backup``, ``copy_library``,
``integrity_summary``.
"""

from .backup_file import BackupFile, BackupProblem, inspect_backup
from .integrity import IntegrityFindings, integrity_summary
from .library import copy_library, sample_originals, tree_state
from .restore import RestoreFailed, restore_backup

__all__ = ["BackupFile", "BackupProblem", "IntegrityFindings", "RestoreFailed", "copy_library", "inspect_backup",
           "integrity_summary", "restore_backup", "sample_originals", "tree_state"]
