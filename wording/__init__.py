"""Words Kontera writes for later readers, stored as a code with parameters and translated when shown.

Whatever the worker (or any service) writes for staff to read later — a voucher's last error, an
audit message, an integration's status message, a payout's state, an e-mail, a connector's error —
is written as a ``Msg``::

    from wording import Msg, MsgN, set_text, text_of

    raise RemoteValidationError(Msg("Fortnox refused the voucher: %(reason)s", reason=fortnox_text))
    audit_record(action="…", message=Msg("Posted to %(system)s: %(ref)s", system="Fortnox", ref="A 25"))
    fields = set_text(payout, "state_message", Msg("Residual %(amount)s", amount=Decimal("12.50")))
    text_of(payout, "state_message")              # in the reader's language: "Residual 12,50"
    {% load wording %}{{ payout|text:"state_message" }}   # the same in a template

* A ``Msg`` is a ``str`` — rendered in the language active when it was made — so code that formats,
  slices, compares or logs it keeps working. It also carries its code (the English source text, the
  msgid) and its parameters.
* A model that stores such texts has a ``coded_texts`` JSON field. ``set_text`` puts the English
  text in the field itself (search, logs, older readers) and the code with its parameters in
  ``coded_texts``; ``text_of`` renders it in the active language. The coded form is used only while
  the field still holds the text it was made for, so a field overwritten by code that knows nothing
  of this, and rows written before it existed, simply show their plain text.
* Inside JSON (settings, task results) store ``stored(value)`` and show ``render(value)``.
* Parameters may be plain strings (text from a remote system is shown as it came), numbers,
  ``Decimal`` (shown in the reader's number format: 1 234,50 in Swedish and Danish), dates and
  datetimes, lazy strings (a choice label), other ``Msg``s and ``Msg.join(separator, items)``.
* ``manage.py makemessages`` (overridden by this app) collects ``Msg("…")`` and
  ``MsgN("…", "…", n)``; ``tests/wording`` fails when one of them lacks a Swedish or Danish
  translation. Write the text as a literal in the call, so both can find it.
"""

from .messages import (
    Msg,
    MsgN,
    amount,
    coded,
    english,
    render,
    restored,
    set_text,
    stored,
    text_of,
    update_values,
)

__all__ = ["Msg", "MsgN", "amount", "coded", "english", "render", "restored", "set_text", "stored", "text_of",
           "update_values"]
