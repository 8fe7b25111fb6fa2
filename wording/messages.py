"""``Msg``: a text with a code and parameters; rendering in the reader's language; storing it on a model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation

from django.utils import formats, timezone, translation
from django.utils.functional import Promise


def _msgid(text) -> str:
    """The source text of a lazy translation (whatever language is active), or the text itself."""
    if isinstance(text, Msg):
        return text.code
    if isinstance(text, Promise):
        with translation.override(None):  # no catalog: gettext gives back the msgid
            return str(text)
    return str(text or "")


def _encode(value):
    if isinstance(value, Msg):
        return {"msg": value.data()}
    if isinstance(value, Promise):
        return {"msg": {"m": _msgid(value)}}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v) for v in value], "sep": ", "}
    return str(value)


def amount(value, places: int | None = 2) -> str:
    """A number in the active language's format: 1 234,50 in Swedish and Danish; English keeps the plain
    1234.50 (what logs, searches and the stored English texts always showed)."""
    if value in (None, ""):
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if places is None:
        exponent = number.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    grouped = (translation.get_language() or "en").split("-")[0] != "en"
    return formats.number_format(number, decimal_pos=places, use_l10n=True, force_grouping=grouped)


def _decode(value) -> str:
    if isinstance(value, dict):
        if "msg" in value:
            return render(value["msg"])
        if "dec" in value:
            return amount(value["dec"], places=None)
        if "dt" in value:
            moment = dt.datetime.fromisoformat(value["dt"])
            if timezone.is_aware(moment):
                moment = timezone.localtime(moment)
            return moment.strftime("%Y-%m-%d %H:%M")
        if "date" in value:
            return value["date"]
        if "list" in value:
            return value.get("sep", ", ").join(_decode(v) for v in value["list"])
    if value is None:
        return ""
    return str(value)


def render(data) -> str:
    """A stored text in the active language: a plain string as it is, a coded one translated."""
    if data is None:
        return ""
    if isinstance(data, Msg):  # made earlier (perhaps in another language): render it anew
        data = data._data
    elif isinstance(data, Promise):
        return str(data)
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return str(data)
    if "list" in data and "m" not in data:
        return _decode(data)
    code = data.get("m") or ""
    params = {key: _decode(value) for key, value in (data.get("p") or {}).items()}
    if "pl" in data:
        text = translation.ngettext(code, data["pl"], int(data.get("n") or 0))
    else:
        text = translation.gettext(code) if code else ""
    if not params:
        return text
    try:
        return text % params
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: the English
        try:
            return (data["pl"] if "pl" in data and int(data.get("n") or 0) != 1 else code) % params
        except (KeyError, ValueError, TypeError):
            return code


class Msg(str):
    """A translatable text with parameters; as a ``str`` it reads in the language active when made."""

    code: str
    params: dict

    def __new__(cls, text, /, **params):
        code = _msgid(text)
        encoded = {key: _encode(value) for key, value in params.items()}
        data = {"m": code, "p": encoded} if encoded else {"m": code}
        return cls._of(data)

    @classmethod
    def _of(cls, data: dict) -> Msg:
        obj = str.__new__(cls, render(data))
        obj._data = data
        obj.code = data.get("m", "")
        obj.params = data.get("p") or {}
        return obj

    def data(self) -> dict:
        return dict(self._data)

    def __reduce__(self):
        return (_from_data, (self._data,))

    @classmethod
    def join(cls, separator: str, items: Iterable) -> Msg:
        """Several texts as one (e.g. the problems of a voucher, one per line)."""
        return cls._of({"list": [_encode(item) for item in items], "sep": separator})


def MsgN(singular, plural, n: int, /, **params) -> Msg:  # noqa: N802 - reads like the class it returns
    """A text with singular and plural forms; ``n`` picks the form and is a parameter as ``%(n)s``."""
    params.setdefault("n", n)
    encoded = {key: _encode(value) for key, value in params.items()}
    return Msg._of({"m": _msgid(singular), "pl": _msgid(plural), "n": int(n), "p": encoded})


def _from_data(data: dict) -> Msg:
    return Msg._of(data)


def stored(value):
    """What to keep in JSON: a coded text as its data, a plain string as it is."""
    if isinstance(value, Msg):
        return value.data()
    if isinstance(value, Promise):
        return {"m": _msgid(value)}
    return value


def restored(value):
    """A stored text back as a ``Msg`` (a plain string stays a string)."""
    return Msg._of(value) if isinstance(value, dict) else value


def english(value) -> str:
    """The English text of a ``Msg`` or stored text (what fields, search and logs keep)."""
    with translation.override("en"):
        return render(stored(value))


def _cleaned(data, clean: Callable[[str], str]):
    if isinstance(data, str):
        return clean(data)
    if isinstance(data, list):
        return [_cleaned(item, clean) for item in data]
    if isinstance(data, dict):
        return {key: (value if key in ("m", "pl") else _cleaned(value, clean)) for key, value in data.items()}
    return data


def set_text(obj, field: str, value, *, clean: Callable[[str], str] | None = None, limit: int | None = None
             ) -> list[str]:
    """Store ``value`` in ``obj.<field>`` (English) and, when coded, in ``obj.coded_texts``.

    ``clean`` is applied to every plain string (e.g. redacting secrets); returns the fields to save.
    """
    codes = dict(getattr(obj, "coded_texts", None) or {})
    data = stored(value if value is not None else "")
    if isinstance(data, dict):
        if clean is not None:
            data = _cleaned(data, clean)
        text = english(data)[:limit] if limit else english(data)
        codes[field] = {**data, "t": text}
    else:
        text = str(data)
        if clean is not None:
            text = clean(text)
        text = text[:limit] if limit else text
        codes.pop(field, None)
    setattr(obj, field, text)
    obj.coded_texts = codes
    return [field, "coded_texts"]


def update_values(obj, **fields) -> dict:
    """Keyword arguments for ``QuerySet.update`` that store texts as ``set_text`` does on ``obj``."""
    for field, value in fields.items():
        set_text(obj, field, value)
    return {**{field: getattr(obj, field) for field in fields}, "coded_texts": obj.coded_texts}


def text_of(obj, field: str) -> str:
    """``obj.<field>`` in the active language (its plain text when it was not written coded)."""
    plain = getattr(obj, field, "") or ""
    entry = (getattr(obj, "coded_texts", None) or {}).get(field)
    if isinstance(entry, dict) and entry.get("t") == plain:
        return render(entry)
    return plain


def coded(obj, field: str):
    """``obj.<field>`` as a ``Msg`` to pass on as a parameter (its plain text when not coded)."""
    plain = getattr(obj, field, "") or ""
    entry = (getattr(obj, "coded_texts", None) or {}).get(field)
    if isinstance(entry, dict) and entry.get("t") == plain:
        return Msg._of({k: v for k, v in entry.items() if k != "t"})
    return plain
