"""The shape every Kontera management command shares: ``--json`` output and an honest exit code."""

from __future__ import annotations

import json
import sys
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
