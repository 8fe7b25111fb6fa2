"""``makemessages`` that also collects ``Msg("…")`` and ``MsgN("…", "…", n)`` (see ``wording``)."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=Msg", "--keyword=MsgN:1,2"]
