"""Who may open which door: a named model permission plus membership of the company acted on.

Every admin action, custom admin page, plain view, import and export checks both. A refusal says
why (the missing permission by name, or the company the user does not serve), so the 403 page can
tell staff what to ask for instead of a bare "403 Forbidden".
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .migrations_support import DEFAULT_GROUPS
from .selectors.companies import user_can_act_on

_DEFAULT_ACTIONS = {
    "view": gettext_lazy("Can view %(things)s"),
    "add": gettext_lazy("Can add %(things)s"),
    "change": gettext_lazy("Can change %(things)s"),
    "delete": gettext_lazy("Can delete %(things)s"),
}


def permission_label(perm: str) -> str:
    """``"bookkeeping.send_voucher"`` → "Can send vouchers to the target system", in the user's language."""
    app_label, codename = perm.split(".", 1)
    try:
        models = list(apps.get_app_config(app_label).get_models())
    except LookupError:
        return perm
    for model in models:
        for name, label in model._meta.permissions:
            if name == codename:
                return str(label)
    action, _sep, model_name = codename.partition("_")
    for model in models:
        if model._meta.model_name == model_name and action in _DEFAULT_ACTIONS:
            return str(_DEFAULT_ACTIONS[action]) % {"things": model._meta.verbose_name_plural}
    return perm


def groups_holding(perm: str) -> list[str]:
    """The default groups that hold ``perm`` (to tell staff whom to ask)."""
    app_label, codename = perm.split(".", 1)
    return list(Group.objects.filter(name__in=DEFAULT_GROUPS, permissions__codename=codename,
                                     permissions__content_type__app_label=app_label)
                .order_by("name").values_list("name", flat=True))


def missing_permission_message(perm: str) -> str:
    message = _("Your account lacks the permission “%(permission)s”.") % {"permission": permission_label(perm)}
    holders = groups_holding(perm)
    if holders:
        message += " " + ngettext("An administrator can give it to you through the group %(groups)s.",
                                  "An administrator can give it to you, e.g. through one of the groups %(groups)s.",
                                  len(holders)) % {"groups": ", ".join(f"“{name}”" for name in holders)}
    return message


def not_serving_message(company) -> str:
    return _("You do not serve %(company)s: only its staff members may open its pages. An administrator can add "
             "you to the company's staff.") % {"company": company}


def require_permission(user, perm: str, *, company=None) -> None:
    """Raise ``PermissionDenied`` saying why, unless ``user`` holds ``perm`` and serves ``company``."""
    if company is not None and not user_can_act_on(user, company):
        raise PermissionDenied(not_serving_message(company))
    if not user.has_perm(perm):
        raise PermissionDenied(missing_permission_message(perm))


def has_permission(user, perm: str, *, company=None) -> bool:
    if company is not None and not user_can_act_on(user, company):
        return False
    return user.has_perm(perm)
