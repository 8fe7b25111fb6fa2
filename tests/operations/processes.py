"""Helpers for tests that run Kontera as an operator would: separate processes, fresh databases."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
ON_POSTGRES = "postgres" in settings.DATABASES["default"]["ENGINE"]
DATABASE_KINDS = ["sqlite", "postgres"] if ON_POSTGRES else ["sqlite"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh process: this one's, minus what the test run set, plus fresh secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.update({
        "KONTERA_NO_BOOTSTRAP": "1",
        "SECRET_KEY": "test-" + uuid.uuid4().hex * 2,
        "KONTERA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": "",  # the database is broker and cache, as on a one-machine install
        "PYTHONPATH": str(ROOT),
    })
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (a new SQLite file, or a new PostgreSQL database) as a DATABASE_URL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    import psycopg

    db = settings.DATABASES["default"]
    name = f"kontera_fresh_{uuid.uuid4().hex[:10]}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = db.get("PASSWORD") or ""
    dsn = dict(user=user, host=host, port=port, password=password, dbname="postgres", autocommit=True)
    with psycopg.connect(**dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{user}:{password}@" if password else f"{user}@"
        yield f"postgres://{auth}{host}:{port}/{name}"
    finally:
        with psycopg.connect(**dsn) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
