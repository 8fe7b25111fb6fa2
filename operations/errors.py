"""django-q2's error reporter, pointed at Sentry when ``SENTRY_DSN`` is set.

django-q2 catches a failing task's exception itself and hands it to ``error_reporter.report()``
inside its ``except`` block (django_q/worker.py); reporters are normally found through the
``djangoq.errorreporters`` entry point of an installed package. Kontera is not an installed
package, so the reporter is put in place here, in every process, at start-up (the cluster forks its
workers after Django is set up, so they inherit it).
"""

from __future__ import annotations

from django.conf import settings


class SentryTaskReporter:
    """Sends the exception being handled to Sentry, tagged as a background task."""

    def report(self) -> None:
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            scope.set_tag("kontera.process", "worker")
            sentry_sdk.capture_exception()


def install_task_error_reporter() -> bool:
    if not getattr(settings, "SENTRY_DSN", ""):
        return False
    from django_q import conf, worker

    reporter = conf.ErrorReporter([SentryTaskReporter()])
    conf.error_reporter = reporter
    worker.error_reporter = reporter
    return True
