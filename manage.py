#!/usr/bin/env python3
"""Kontera's entry point.

On a fresh machine with only Python 3.11 this file bootstraps itself: when it is not running in
the project's virtualenv (``.venv``) it creates that virtualenv, installs ``requirements.txt``
(again whenever the file changes), and re-executes the same command inside it. So
``python3 manage.py run`` and ``python3 manage.py test`` work from a clean clone.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def _in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _bootstrap() -> None:
    """Create/refresh .venv and re-exec inside it. Skipped with KONTERA_NO_BOOTSTRAP=1."""
    if os.environ.get("KONTERA_NO_BOOTSTRAP") or _in_project_venv():
        return
    if sys.version_info < (3, 11):
        sys.exit("Kontera needs Python 3.11 or newer.")
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not VENV_PYTHON.exists():
        print("Creating the virtualenv in .venv …", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("Installing requirements.txt into .venv …", flush=True)
        subprocess.check_call([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])
        STAMP.write_text(wanted)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(ROOT / "manage.py"), *sys.argv[1:]])


def main() -> None:
    _bootstrap()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
