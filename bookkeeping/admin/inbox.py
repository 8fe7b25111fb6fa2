"""The error inbox: failed vouchers of every flow grouped by reason (their stored error code), each group
with its count, what it means and what to do, the vouchers, and two bulk actions — send again, and
handled outside Kontera (a note is required; both are in the audit trail)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from wording import MsgN, render

from ..explanations import explain
from ..selectors.companies import companies_for_user
from ..selectors.inbox import failure_groups, group_vouchers
from ..services.handling import vouchers_mark_handled_outside, vouchers_send_again
from .overview import voucher_list_url

SEND_AGAIN = "bookkeeping.send_voucher"  # sending again is sending (issue 11's named permission)
HANDLE_OUTSIDE = "bookkeeping.handle_outside_voucher"
SHOWN_PER_GROUP = 50


def _company_ids(user):
    return None if user.is_superuser else list(companies_for_user(user).values_list("pk", flat=True))


def inbox_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    ids = _company_ids(request.user)
    if request.method == "POST":
        _act(request, ids)
        return HttpResponseRedirect(request.path)
    groups = []
    for group in failure_groups(ids):
        explanation, advice = explain(group.system, group.code)
        vouchers = list(group_vouchers(ids, system=group.system, code=group.code, limit=SHOWN_PER_GROUP))
        groups.append({
            "group": group, "explanation": render(explanation), "advice": render(advice), "vouchers": vouchers,
            "system_label": vouchers[0].get_system_display() if vouchers else group.system,
            "more": max(group.count - len(vouchers), 0),
            "list_url": voucher_list_url(system=group.system, state__exact="failed", last_error_code=group.code),
        })
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Error inbox"),
        "opts": model_admin.model._meta,
        "groups": groups,
        "total": sum(g["group"].count for g in groups),
        "can_send_again": request.user.has_perm(SEND_AGAIN),
        "can_handle_outside": request.user.has_perm(HANDLE_OUTSIDE),
    }
    return TemplateResponse(request, "admin/bookkeeping/voucher/inbox.html", context)


def _act(request, ids) -> None:
    action = request.POST.get("action")
    system, code = request.POST.get("system", ""), request.POST.get("code", "")
    # Only this user's companies and only this group: a posted id from elsewhere is simply not found.
    vouchers = group_vouchers(ids, system=system, code=code, limit=None)
    if request.POST.get("whole_group") != "1":
        chosen = [int(pk) for pk in request.POST.getlist("voucher") if pk.isdigit()]
        vouchers = vouchers.filter(pk__in=chosen)
    # Kept a queryset: a whole group can be tens of thousands, queued a chunk at a time.
    if not vouchers.exists():
        messages.warning(request, _("Choose the vouchers first (or the whole group)."))
        return
    if action == "send_again":
        if not request.user.has_perm(SEND_AGAIN):
            raise PermissionDenied
        result = vouchers_send_again(vouchers=vouchers, actor=request.user)
        messages.success(request, MsgN("%(n)s voucher queued again", "%(n)s vouchers queued again", result.queued)
                         + "; " + MsgN("%(n)s refused again by the pre-flight check.",
                                       "%(n)s refused again by the pre-flight check.", result.failed))
    elif action == "handled_outside":
        if not request.user.has_perm(HANDLE_OUTSIDE):
            raise PermissionDenied
        try:
            count = vouchers_mark_handled_outside(vouchers=vouchers, note=request.POST.get("note", ""),
                                                  actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return
        messages.success(request, MsgN("%(n)s voucher marked as handled outside Kontera.",
                                       "%(n)s vouchers marked as handled outside Kontera.", count))
    else:
        messages.error(request, _("Unknown action."))
