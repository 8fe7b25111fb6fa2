"""``manage.py logins``: the demo's logins again (the admin's password is in var/admin-password.txt)."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from .run import VAR


class Command(BaseCommand):
    help = "Print the logins of the local demo again (admin and the demo staff users)."

    def handle(self, *args, **options):
        password_file = VAR / "admin-password.txt"
        if password_file.exists():
            self.stdout.write(_("Admin: %(user)s / %(password)s") % {"user": "admin",
                                                                     "password": password_file.read_text().strip()})
        else:
            self.stdout.write(_("No admin login yet: run python3 manage.py run first."))
        self.stdout.write(_("Staff: anna / demo-anna-2026 (Bookkeeper, Swedish companies), lars / demo-lars-2026 "
                            "(Administrator, Danish), eva / demo-eva-2026 (Reviewer (read only), all three "
                            "companies)"))
