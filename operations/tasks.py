"""Background tasks of operations: thin shells over the services."""

from __future__ import annotations

from .retention import retention_prune


def prune() -> dict:
    """Daily: forget what is past its retention (the bookkeeping audit trail stays as long as the law asks)."""
    return retention_prune().as_dict()
