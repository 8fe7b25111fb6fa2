"""Explicit map: system id -> connector class. The admin's list of systems comes from here."""

from __future__ import annotations

from importlib import import_module

from django.utils.translation import gettext_lazy as _

SYSTEMS: dict[str, tuple[str, str]] = {
    # id: (label, "module:Class")
    "fortnox": (_("Fortnox"), "integrations.fortnox.connector:FortnoxConnector"),
    "dinero": (_("Dinero"), "integrations.dinero.connector:DineroConnector"),
    "netseasy": (_("Nets Easy"), "integrations.netseasy.connector:NetsEasyConnector"),
}

# Systems vouchers are posted into (an account plan exists per company for each).
TARGET_SYSTEMS = ("fortnox", "dinero")

SYSTEM_CHOICES = [(key, label) for key, (label, _path) in SYSTEMS.items()]
TARGET_CHOICES = [(key, SYSTEMS[key][0]) for key in TARGET_SYSTEMS]


def connector_class(system: str):
    try:
        _label, path = SYSTEMS[system]
    except KeyError:
        raise LookupError(f"Unknown system {system!r}") from None
    module_name, class_name = path.split(":")
    return getattr(import_module(module_name), class_name)


def connector_for(integration, **kwargs):
    """Build the connector for an ``Integration`` row (never with credentials no key could open)."""
    if getattr(integration, "credentials_unreadable", False):
        from .base import CredentialsUnreadable

        raise CredentialsUnreadable(integration.credentials_unreadable_message, code="credentials_unreadable")
    return connector_class(integration.system)(integration, **kwargs)
