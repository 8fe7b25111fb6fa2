"""How many rows a list shows, cheaply on tables of millions: exact up to 10,000, then the planner's estimate."""

from __future__ import annotations

import json

from django.db import connections
from django.db.models import QuerySet

# Counted exactly up to here: reading 10,001 index entries takes milliseconds; beyond, "about N".
EXACT_UP_TO = 10_000


def planner_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's own estimate of the rows (EXPLAIN: nothing is read) from the table's statistics and the
    filters' selectivity; None on other databases."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def count_or_estimate(queryset: QuerySet) -> tuple[int, bool]:
    """``(count, estimated)``: the exact count when it is at most 10,000, else PostgreSQL's estimate (never
    below 10,001). SQLite (development and the demo) counts exactly."""
    capped = queryset.order_by().values("pk")[:EXACT_UP_TO + 1].count()
    if capped <= EXACT_UP_TO:
        return capped, False
    estimate = planner_estimate(queryset)
    if estimate is None:
        return queryset.count(), False
    return max(estimate, EXACT_UP_TO + 1), True
