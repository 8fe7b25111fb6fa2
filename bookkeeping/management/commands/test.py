"""``manage.py test`` runs the whole pytest suite (pytest-django), with any extra pytest arguments."""

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

ROOT = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = "Run the test suite with pytest. Extra arguments go to pytest, e.g. `manage.py test -k fortnox -x`."

    def add_arguments(self, parser):
        parser.add_argument("pytest_args", nargs="*")

    def run_from_argv(self, argv):
        # Hand every argument after "test" to pytest untouched (flags like -k or -x included).
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import pytest

        os.chdir(ROOT)
        sys.exit(pytest.main(["-c", str(ROOT / "tests" / "pytest.ini"), "--rootdir", str(ROOT), *argv[2:]]))

    def handle(self, *args, **options):  # pragma: no cover - run_from_argv does the work
        pass
