from ...services.secrets import secrets_rotate
from ..base import KonteraCommand


class Command(KonteraCommand):
    help = "Re-encrypt every stored secret with the first key in KONTERA_ENCRYPTION_KEYS (after adding a new key)."

    def run(self, **options):
        return secrets_rotate()
