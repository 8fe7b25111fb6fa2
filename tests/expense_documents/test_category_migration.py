"""A line's category changes from an account number to the expense tool's text: nothing lost either way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("expense_documents", "0001_initial")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_account_numbers_become_text_and_back():
    old = _migrate(BEFORE)
    company = old.get_model("bookkeeping", "Company").objects.create(slug="gammel", name="Gammel ApS", country="DK")
    document = old.get_model("expense_documents", "ExpenseDocument").objects.create(
        company=company, reference="R-1", supplier_name="Kontorland", document_date=dt.date(2026, 1, 5))
    Line = old.get_model("expense_documents", "ExpenseLine")
    Line.objects.create(document=document, amount=Decimal("125.00"), category=7200, position=0)
    Line.objects.create(document=document, amount=Decimal("10.00"), category=None, position=1)

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    from expense_documents.models import ExpenseLine

    assert list(ExpenseLine.objects.filter(document_id=document.pk).order_by("position")
                .values_list("category", flat=True)) == ["7200", ""]
    ExpenseLine.objects.create(document_id=document.pk, amount=Decimal("5.00"), category="Rejser", position=2)

    back = _migrate(BEFORE)
    categories = list(back.get_model("expense_documents", "ExpenseLine").objects.filter(document_id=document.pk)
                      .order_by("position").values_list("category", flat=True))
    assert categories == [7200, None, None]  # a name has no number to go back to
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
