"""``{{ obj|text:"field" }}`` (a stored text in the reader's language), ``{{ value|rendered }}``,
``{{ number|amount }}`` (1 234,50 in Swedish and Danish)."""

from django import template

from .. import messages

register = template.Library()


@register.filter
def text(obj, field: str) -> str:
    return messages.text_of(obj, field)


@register.filter
def rendered(value) -> str:
    return messages.render(value)


@register.filter
def amount(value, places=2) -> str:
    return messages.amount(value, places=int(places) if places not in (None, "") else None)
