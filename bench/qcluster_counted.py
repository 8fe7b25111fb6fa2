"""``manage.py qcluster`` whose dispatchers count their SQL statements (bench/fortnox_push.py runs it).

Each dispatch run's statements and vouchers sent are appended as one line to the file named by
KONTERA_BENCH_SQL_COUNTS; the worker processes are forked from here, so they inherit the wrapper.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import django

    django.setup()
    from django.core.management import execute_from_command_line
    from django.db import connection

    from bookkeeping.services import sending

    counts_file = os.environ["KONTERA_BENCH_SQL_COUNTS"]
    dispatch = sending.vouchers_dispatch

    def counted_dispatch(**kwargs):
        statements = [0]

        def count(execute, sql, params, many, context):
            statements[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            result = dispatch(**kwargs)
        with open(counts_file, "a") as out:  # one short line per run: appends do not interleave
            out.write(f"{statements[0]} {result.sent}\n")
        return result

    sending.vouchers_dispatch = counted_dispatch
    execute_from_command_line(["manage.py", "qcluster"])


if __name__ == "__main__":
    main()
