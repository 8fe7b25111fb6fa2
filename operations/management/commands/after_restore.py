from bookkeeping.management.base import KonteraCommand

from ...restore import after_restore


class Command(KonteraCommand):
    help = ("After restoring a backup, before starting the workers: vouchers not known as posted are looked up "
            "in the target before any post, and new vouchers never reuse a reference sent after the backup.")

    def run(self, **options):
        return after_restore().as_dict()
