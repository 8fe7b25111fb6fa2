"""Writing many vouchers (or other rows) at once, for the imports.

``bulk_create`` builds a model instance per row and renders every value into one huge INSERT: for
25,000 journals with 100,000 rows that alone took 40 s on PostgreSQL (issue 15). On PostgreSQL the
imports write with ``COPY … FROM STDIN`` instead (psycopg 3's ``cursor.copy``; the voucher ids are
reserved first from the table's own sequence, so the rows can name their voucher); other databases
(SQLite in development and the demo) keep ``bulk_create``. Either way it runs inside the caller's
transaction: all or nothing.

Values are given as dicts of field names (``attname``: ``company_id``, not ``company``); what a dict
leaves out gets the field's default, as ``Model(**values)`` would; ``auto_now``/``auto_now_add``
fields get the time of the write.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection, models, transaction
from django.utils import timezone

from ..models import Voucher, VoucherRow

ZERO = Decimal("0.00")


def _copy_plan(model, given: Sequence[str], *, with_pk: bool):
    """The columns of ``model`` to write: those ``given`` (read from each dict), then every other
    concrete field with its default (one value for all rows), and which given columns hold JSON."""
    now = timezone.now()
    given_columns, given_json, fixed_columns, fixed_values = [], [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and not with_pk:
            continue
        is_json = isinstance(field, models.JSONField)
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            fixed_columns.append(field.column)
            fixed_values.append(now)
        elif field.attname in given:
            given_json.append(is_json)
            given_columns.append((field.column, field.attname))
        else:
            default = field.get_default()
            fixed_columns.append(field.column)
            # COPY's text format: PostgreSQL parses JSON text into jsonb itself.
            fixed_values.append(json.dumps(default, cls=field.encoder) if is_json and default is not None else default)
    return given_columns, given_json, fixed_columns, tuple(fixed_values)


def _copy(model, records: Iterable[dict], *, with_pk: bool) -> None:
    """COPY the records (an iterable, consumed once: a big import never holds them all as rows)."""
    records = iter(records)
    first = next(records, None)
    if first is None:
        return
    records = itertools.chain((first,), records)
    given_columns, given_json, fixed_columns, fixed = _copy_plan(model, list(first), with_pk=with_pk)
    read = operator.itemgetter(*(name for _column, name in given_columns))
    json_at = [index for index, is_json in enumerate(given_json) if is_json]
    encoders = {index: model._meta.get_field(given_columns[index][1]).encoder for index in json_at}
    fields = {field.attname: field for field in model._meta.concrete_fields}
    defaults = {name: fields[name].get_default() for _column, name in given_columns}
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in
                      [column for column, _name in given_columns] + fixed_columns)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no copy()
        with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for record in records:
                try:
                    values = read(record)
                    values = list(values) if len(given_columns) > 1 else [values]
                except KeyError:  # a record without a field the first one had: its default, as Model() does
                    values = [record[name] if name in record else defaults[name] for _column, name in given_columns]
                for index in json_at:
                    if values[index] is not None:
                        values[index] = json.dumps(values[index], cls=encoders[index])
                copy.write_row((*values, *fixed))


def _reserve_ids(model, count: int) -> list[int]:
    """``count`` new primary keys from the table's own sequence (never reused, so never clashing)."""
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [table, column, count])
        return [row[0] for row in cursor.fetchall()]


def vouchers_insert(*, vouchers: Sequence[dict], rows: Iterable[Iterable[dict]]) -> list[int]:
    """Insert new vouchers and each one's rows (the i-th of ``rows`` belong to ``vouchers[i]``, in their
    order: ``position`` is set from it; it may be a generator). Returns the new vouchers' ids, in order.
    The first record of each list decides the columns: a field only later records name is not written.
    Each voucher's ``debit_total``/``credit_total`` are summed from its rows on the way."""
    if not vouchers:
        return []
    debits, credits = [ZERO] * len(vouchers), [ZERO] * len(vouchers)
    copying = connection.vendor == "postgresql"
    first_row: dict = {}  # COPY writes the columns the first row names (see above); the totals count those

    def counted(index: int, voucher_rows: Iterable[dict]):
        for row in voucher_rows:
            if not first_row:
                first_row.update(dict.fromkeys(row))
            if not copying or "debit" in first_row:
                debits[index] += Decimal(row.get("debit") or ZERO)
            if not copying or "credit" in first_row:
                credits[index] += Decimal(row.get("credit") or ZERO)
            yield row

    def totalled(values: dict, index: int) -> dict:
        return {**values, "debit_total": debits[index], "credit_total": credits[index]}

    if connection.vendor == "postgresql":
        ids = _reserve_ids(Voucher, len(vouchers))
        # The rows first, so each voucher is written once with its totals: Django's foreign keys on
        # PostgreSQL are checked at commit (DEFERRABLE INITIALLY DEFERRED), which atomic() makes ours.
        with transaction.atomic():
            _copy(VoucherRow, ({**row, "voucher_id": pk, "position": position}
                               for index, (pk, voucher_rows) in enumerate(zip(ids, rows, strict=True))
                               for position, row in enumerate(counted(index, voucher_rows))), with_pk=False)
            _copy(Voucher, ({**totalled(values, index), "id": pk}
                            for index, (values, pk) in enumerate(zip(vouchers, ids, strict=True))), with_pk=True)
        return ids
    rows = [list(counted(index, voucher_rows)) for index, voucher_rows in enumerate(rows)]
    if len(rows) != len(vouchers):
        raise ValueError("vouchers_insert: one list of rows per voucher")
    created = Voucher.objects.bulk_create([Voucher(**totalled(values, index)) for index, values in enumerate(vouchers)],
                                          batch_size=1000)
    VoucherRow.objects.bulk_create([
        VoucherRow(voucher_id=voucher.pk, position=position, **row)
        for voucher, voucher_rows in zip(created, rows, strict=True) for position, row in enumerate(voucher_rows)
    ], batch_size=1000)
    return [voucher.pk for voucher in created]


def rows_insert(model, records: Sequence[dict], *, batch_size: int = 2000) -> list[int]:
    """Insert plain rows of ``model`` (dicts of attnames) and return their new ids, in order: COPY on
    PostgreSQL (ids reserved from the table's sequence first), ``bulk_create`` elsewhere."""
    if not records:
        return []
    if connection.vendor == "postgresql":
        ids = _reserve_ids(model, len(records))
        _copy(model, ({**values, model._meta.pk.attname: pk} for values, pk in zip(records, ids, strict=True)),
              with_pk=True)
        return ids
    created = model.objects.bulk_create([model(**values) for values in records], batch_size=batch_size)
    return [row.pk for row in created]


def rows_append(model, records: Iterable[dict], *, batch_size: int = 2000) -> int:
    """Insert plain rows of ``model`` (dicts of attnames; the first decides which are given, the rest get
    their defaults) whose ids nobody needs, as they come from ``records`` (a generator is never held
    whole): COPY on PostgreSQL, one INSERT sent a batch at a time elsewhere. A JSON value several records
    share (the same object) must not change between them: it is encoded once. Returns how many."""
    count = 0

    def counted():
        nonlocal count
        for values in records:
            count += 1
            yield values

    if connection.vendor == "postgresql":
        _copy(model, counted(), with_pk=False)
        return count
    # Elsewhere one INSERT sent many times: bulk_create would build a model instance and compile
    # SQL for every row, several times the cost of the insert itself.
    rows = counted()
    first = next(rows, None)
    if first is None:
        return 0
    rows = itertools.chain((first,), rows)
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    given = set(first)
    now = timezone.now()
    fixed = {field.attname: now for field in fields
             if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)}
    defaults = {field.attname: field.get_default() for field in fields if field.attname not in given}
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    json_fields = {field.attname for field in fields if isinstance(field, models.JSONField)}
    # Many records share one JSON value (the same dict): encoded once per batch (which holds them all, so
    # an id names one object while it lasts).
    encoded: dict[int, object] = {}

    def prepared(field, value):
        if field.attname not in json_fields:
            return field.get_db_prep_save(value, connection)
        if id(value) not in encoded:
            encoded[id(value)] = field.get_db_prep_save(value, connection)
        return encoded[id(value)]

    with connection.cursor() as cursor:
        while batch := list(itertools.islice(rows, batch_size)):
            cursor.executemany(sql, [
                [prepared(field, fixed[field.attname] if field.attname in fixed else
                          values.get(field.attname, defaults.get(field.attname)))
                 for field in fields] for values in batch])
            encoded.clear()
    return count


def rows_update(model, records: Sequence[dict], *, fields: Sequence[str]) -> int:
    """Set ``fields`` of existing rows (each dict names its ``pk`` and the fields' attnames); an
    ``auto_now`` field gets the time of the write. One statement sent many times: Django's
    ``bulk_update`` would build a CASE per field and row, slower than the update itself."""
    if not records:
        return 0
    stamped = [field.attname for field in model._meta.concrete_fields if getattr(field, "auto_now", False)]
    now = [model._meta.get_field(name).get_db_prep_value(timezone.now(), connection) for name in stamped]
    columns = [model._meta.get_field(name) for name in fields if name not in stamped]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    assignments += "".join(f", {quote(model._meta.get_field(name).column)} = %s" for name in stamped)
    sql = (f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
           f"WHERE {quote(model._meta.pk.column)} = %s")
    prepare = [(field.attname, field.get_db_prep_value) for field in columns]
    with connection.cursor() as cursor:
        cursor.executemany(sql, [
            [*(to_db(values[name], connection) for name, to_db in prepare), *now, values["pk"]]
            for values in records])
    return len(records)
