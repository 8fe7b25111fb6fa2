"""``manage.py qcluster`` whose dispatchers count their SQL statements (bench/fortnox_push.py runs it).

Each dispatch run's statements and vouchers sent are appended as one line to the file named by
KONTERA_BENCH_SQL_COUNTS; the worker processes are forked from here, so they inherit the wrapper.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    from bookkeeping.services import sending

    counts_file = os.environ["KONTERA_BENCH_SQL_COUNTS"]
    dispatch = sending.vouchers_dispatch
    # Every statement of every thread of the process (the dispatcher's batches run in threads with their own
    # connections): counted where Django's cursors execute.
    from django.db.backends import utils

    counter, lock = [0], threading.Lock()
    for name in ("execute", "executemany"):
        original = getattr(utils.CursorWrapper, name)

        def counted(self, *args, _original=original, **kwargs):
            with lock:
                counter[0] += 1
            return _original(self, *args, **kwargs)

        setattr(utils.CursorWrapper, name, counted)
    # PostgreSQL's bulk writes (COPY) go past Django's cursor methods: each counts as one statement.
    from bookkeeping.services import bulk

    copy = bulk._copy

    def counted_copy(*args, **kwargs):
        with lock:
            counter[0] += 1
        return copy(*args, **kwargs)

    bulk._copy = counted_copy

    def counted_dispatch(**kwargs):
        before, cpu = counter[0], time.process_time()  # this worker process: the dispatcher and its threads
        result = dispatch(**kwargs)
        cpu = time.process_time() - cpu
        # One line per run (appends do not interleave); runs of the process's other workers overlap, so
        # the sums over all lines are what the benchmark reads.
        with open(counts_file, "a") as out:
            out.write(f"{counter[0] - before} {result.sent} {cpu:.3f}\n")
        return result

    sending.vouchers_dispatch = counted_dispatch
    execute_from_command_line(["manage.py", "qcluster"])


if __name__ == "__main__":
    main()
