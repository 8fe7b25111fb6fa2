# Danish as Django has it, except the thousands separator: amounts read 1 234,50 in Swedish and
# Danish alike (a space is one of the separators Dansk Sprognævn allows; the issue asks for it).
from django.conf.locale.da.formats import *  # noqa: F403

THOUSAND_SEPARATOR = "\xa0"  # non-breaking space, as Django's Swedish formats
