"""A database from before the flows got their own apps migrates with nothing lost.

The expense-document models moved from ``bookkeeping`` to ``expense_documents`` and the Nets Easy
models from ``integrations`` to ``card_payments``, keeping their tables. This test goes back to the
old migrations, writes rows, permissions, a group and a schedule the old way, migrates forward and
checks that the rows are read by the new models and that the group's permissions still work.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OLD = [("bookkeeping", "0003_expense_documents"), ("integrations", "0002_netseasy"),
       ("contenttypes", "0002_remove_content_type_name"), ("auth", "0012_alter_user_first_name_max_length"),
       ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_an_old_database_keeps_its_rows_permissions_and_schedules():
    old = _migrate(OLD)
    # The old app labels are real again: the models live where they used to.
    assert old.get_model("bookkeeping", "ExpenseDocument")._meta.db_table == "bookkeeping_expensedocument"
    with pytest.raises(LookupError):
        old.get_model("expense_documents", "ExpenseDocument")

    Company = old.get_model("bookkeeping", "Company")
    company = Company.objects.create(slug="gammal", name="Gammal AB", country="DK")
    document = old.get_model("bookkeeping", "ExpenseDocument").objects.create(
        company=company, reference="R-1", supplier_name="Kontorland", document_date=dt.date(2026, 1, 5))
    old.get_model("bookkeeping", "ExpenseLine").objects.create(document=document, amount=Decimal("125.00"))
    old.get_model("bookkeeping", "WorkflowRule").objects.create(company=company, name="Fravælg Q8")
    integration = old.get_model("integrations", "Integration").objects.create(company=company, system="netseasy")
    old.get_model("integrations", "NetsPayout").objects.create(
        integration=integration, company=company, nets_id="p-1", date=dt.date(2026, 1, 6), currency="SEK",
        amount=Decimal("97.50"))

    # Content types and permissions as the old apps had them (migrate creates them after migrating).
    OldContentType = old.get_model("contenttypes", "ContentType")
    OldPermission = old.get_model("auth", "Permission")
    for label, model in (("bookkeeping", "expensedocument"), ("integrations", "netspayout")):
        OldContentType.objects.filter(app_label__in=["expense_documents", "card_payments"], model=model).delete()
        OldContentType.objects.get_or_create(app_label=label, model=model)
    sync, _new = OldPermission.objects.get_or_create(
        codename="sync_expensedocument", defaults={"name": "Can sync expense documents to Dinero"},
        content_type=OldContentType.objects.get(app_label="bookkeeping", model="expensedocument"))
    view_payout, _new = OldPermission.objects.get_or_create(
        codename="view_netspayout", defaults={"name": "Can view Nets Easy payout"},
        content_type=OldContentType.objects.get(app_label="integrations", model="netspayout"))
    staff = old.get_model("auth", "Group").objects.create(name="Bogholderi")
    staff.permissions.add(sync, view_payout)
    old.get_model("django_q", "Schedule").objects.create(
        name="kontera: sync expense documents", func="bookkeeping.tasks_expenses.sync_documents")

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from django_q.models import Schedule

    from card_payments.models import NetsPayout
    from expense_documents.models import ExpenseDocument, WorkflowRule

    moved = ExpenseDocument.objects.get(reference="R-1")
    assert moved.pk == document.pk
    assert moved.total() == Decimal("125.00")
    assert WorkflowRule.objects.get().name == "Fravælg Q8"
    assert NetsPayout.objects.get(nets_id="p-1").amount == Decimal("97.50")

    # The same permission rows, now under the new app labels: the group keeps what it was given.
    ContentType.objects.clear_cache()
    group = Group.objects.get(name="Bogholderi")
    perms = {(p.pk, p.content_type.app_label, p.codename) for p in group.permissions.select_related("content_type")}
    assert perms == {(sync.pk, "expense_documents", "sync_expensedocument"),
                     (view_payout.pk, "card_payments", "view_netspayout")}
    assert not ContentType.objects.filter(app_label="bookkeeping", model="expensedocument").exists()
    assert Schedule.objects.get(name="kontera: sync expense documents").func == "expense_documents.tasks.sync_documents"


@pytest.mark.django_db
def test_old_admin_addresses_lead_to_the_moved_pages(client, superuser, company):
    client.force_login(superuser)
    response = client.get("/admin/bookkeeping/expensedocument/?type__exact=invoice")
    assert response.status_code == 301
    assert response["Location"] == "/admin/expense_documents/expensedocument/?type__exact=invoice"
    response = client.get(f"/admin/integrations/netspayout/company/{company.pk}/settings/")
    assert response["Location"] == f"/admin/card_payments/netspayout/company/{company.pk}/settings/"
    assert client.get(response["Location"]).status_code == 200
    # Pages that did not move are not redirected.
    assert client.get("/admin/bookkeeping/voucher/").status_code == 200
