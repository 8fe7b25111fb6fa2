"""Uploaded files waiting between preview and confirmation.

A file is copied chunk by chunk (never read whole into memory for storing) into
``KONTERA_UPLOAD_DIR`` under a random token, next to a small JSON note saying who uploaded it,
for which company and import. Confirming or cancelling deletes it; a scheduled cleanup
(``uploads_cleanup``, declared in ``bookkeeping/schedules.py``) deletes what was abandoned.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

_TOKEN_CHARS = set("0123456789abcdef")


@dataclass(frozen=True)
class StoredUpload:
    token: str
    kind: str
    user_id: int
    company_id: int
    filename: str
    options: dict
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


def upload_dir() -> Path:
    return Path(settings.KONTERA_UPLOAD_DIR)


def _paths(token: str) -> tuple[Path, Path] | None:
    if len(token) != 32 or not set(token) <= _TOKEN_CHARS:
        return None
    return upload_dir() / f"{token}.upload", upload_dir() / f"{token}.json"


def upload_store(*, kind: str, user, company, upload, options: dict | None = None) -> StoredUpload:
    """Keep ``upload`` (a Django ``UploadedFile``) until it is confirmed, cancelled or abandoned."""
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    data_path, note_path = _paths(token)
    with data_path.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    note = {"kind": kind, "user": user.pk, "company": company.pk, "filename": Path(upload.name or "").name,
            "options": options or {}}
    note_path.write_text(json.dumps(note))
    return StoredUpload(token, kind, user.pk, company.pk, note["filename"], note["options"], data_path)


def upload_get(*, token: str, kind: str, user) -> StoredUpload | None:
    """The upload ``user`` stored under ``token`` for ``kind``, or None (unknown, expired or someone else's)."""
    paths = _paths(token or "")
    if paths is None or not paths[0].exists() or not paths[1].exists():
        return None
    try:
        note = json.loads(paths[1].read_text())
    except (OSError, ValueError):
        return None
    if note.get("kind") != kind or note.get("user") != user.pk:
        return None
    return StoredUpload(token, kind, note["user"], note["company"], note.get("filename", ""),
                        note.get("options") or {}, paths[0])


def upload_discard(*, token: str) -> bool:
    paths = _paths(token or "")
    if paths is None:
        return False
    existed = paths[0].exists()
    for path in paths:
        path.unlink(missing_ok=True)
    return existed


def uploads_cleanup(*, max_age_seconds: int | None = None, now: float | None = None) -> int:
    """Delete uploads older than ``max_age_seconds`` (default: KONTERA_UPLOAD_MAX_AGE_MINUTES); returns how many."""
    directory = upload_dir()
    if not directory.exists():
        return 0
    max_age = max_age_seconds if max_age_seconds is not None else settings.KONTERA_UPLOAD_MAX_AGE_MINUTES * 60
    cutoff = (now if now is not None else time.time()) - max_age
    removed = 0
    for path in directory.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += path.suffix != ".json"
        except FileNotFoundError:
            continue  # confirmed or cancelled meanwhile
    return removed
