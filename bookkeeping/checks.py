from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def encryption_keys_configured(app_configs, **kwargs):
    if settings.KONTERA_ENCRYPTION_KEYS:
        return []
    return [Warning(
        "KONTERA_ENCRYPTION_KEYS is not set: secrets are encrypted with a key derived from SECRET_KEY.",
        hint="Generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
        id="kontera.W001",
    )]
