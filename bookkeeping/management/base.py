"""The shape every Kontera management command shares: ``--json`` output and an honest exit code."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ..models import Company


class KonteraCommand(BaseCommand):
    """Subclasses implement ``run(**options) -> dict``; ``result["ok"]`` False means exit status 1."""

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print a machine-readable JSON result.")
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser):
        pass

    def handle(self, *args, **options):
        self.as_json = options.get("json", False)
        try:
            result = self.run(**options) or {}
        except CommandError as exc:
            if self.as_json:
                self.stdout.write(json.dumps({"ok": False, "error": str(exc)}))
                sys.exit(1)
            raise
        result.setdefault("ok", True)
        if self.as_json:
            self.stdout.write(json.dumps(result, default=str, ensure_ascii=False, indent=2))
        else:
            self.render(result)
        if not result["ok"]:
            sys.exit(1)

    def run(self, **options) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, result: dict[str, Any]) -> None:
        for key, value in result.items():
            if key != "ok":
                self.stdout.write(f"{key}: {value}")

    def progress(self, message: str) -> None:
        """Progress lines go to stderr so ``--json`` output stays parseable."""
        self.stderr.write(message)

    @staticmethod
    def company(slug: str) -> Company:
        try:
            return Company.objects.get(slug=slug)
        except Company.DoesNotExist:
            raise CommandError(f"No company with slug {slug!r}. Try: manage.py company_add") from None


def add_secret_arguments(parser, *, flag: str, env_var: str, what: str) -> None:
    """``--x KEY`` (warned: visible in the process list), ``--x -`` (stdin), ``--x-file PATH``, or ``env_var``."""
    parser.add_argument(flag, dest="secret_value", metavar="KEY",
                        help=f"{what}; '-' reads it from standard input. Better: {flag}-file or {env_var}, "
                             "since a value on the command line is visible to every local user.")
    parser.add_argument(f"{flag}-file", dest="secret_file", metavar="PATH",
                        help=f"Read {what} from this file (its first line).")


def read_secret(command: BaseCommand, options: dict, *, flag: str, env_var: str, what: str,
                required: bool) -> str | None:
    """The secret from exactly one source: the option, its file, stdin, the environment, or a prompt.

    An inline value works but is warned about: /proc/<pid>/cmdline shows it to every local user
    (and shell history keeps it).
    """
    from django.utils.translation import gettext as _

    value, path = options.get("secret_value"), options.get("secret_file")
    if value and path:
        raise CommandError(_("Give %(flag)s or %(flag)s-file, not both.") % {"flag": flag})
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(_("Cannot read %(path)s: %(reason)s") % {"path": path, "reason": exc}) from None
        value = lines[0].strip() if lines else ""
    elif value == "-":
        value = sys.stdin.readline().strip()
    elif value:
        command.stderr.write(_("Warning: %(what)s given on the command line is visible to every user of this "
                               "machine (process list, shell history). Use %(flag)s-file, '%(flag)s -' (standard "
                               "input) or the environment variable %(env)s instead.")
                             % {"what": what, "flag": flag, "env": env_var})
    elif os.environ.get(env_var):
        value = os.environ[env_var].strip()
    elif required and sys.stdin.isatty():
        value = getpass.getpass(_("%(what)s: ") % {"what": what.capitalize()}).strip()
    if required and not value:
        raise CommandError(_("%(what)s is missing: give it with %(flag)s-file, '%(flag)s -' (standard input) or the "
                             "environment variable %(env)s.") % {"what": what.capitalize(), "flag": flag,
                                                                 "env": env_var})
    return value or None
