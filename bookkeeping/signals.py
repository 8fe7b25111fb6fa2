"""What a change to an account mapping sets in motion, whichever way it was made (the admin, the CSV
import in the admin or from ``manage.py import``, the unmapped-values page, a settings page, the
shell): an audit event, and — once the change is committed — one re-evaluation task per company.
A dry-run import rolls back, so nothing it did is audited or queued."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from wording import Msg

from .models import AccountMapping
from .services.audit import audit_record
from .services.mappings import describe_mapping, enqueue_mappings_reevaluation, mapping_actor


@receiver(post_save, sender=AccountMapping, dispatch_uid="kontera-mapping-saved")
def mapping_saved(sender, instance: AccountMapping, created: bool, raw: bool = False, **kwargs):
    if raw:  # loaddata
        return
    audit_record(action="mapping:" + ("created" if created else "changed"), company=instance.company,
                 actor=mapping_actor.get(), message=describe_mapping(instance) if created else
                 Msg("Now: %(mapping)s", mapping=describe_mapping(instance)))
    enqueue_mappings_reevaluation(instance.company_id)


@receiver(post_delete, sender=AccountMapping, dispatch_uid="kontera-mapping-deleted")
def mapping_deleted(sender, instance: AccountMapping, origin=None, **kwargs):
    if isinstance(origin, AccountMapping) or getattr(origin, "model", None) is AccountMapping:
        # Deleted for itself (not swept away with its company, which takes its history along).
        audit_record(action="mapping:deleted", company=instance.company, actor=mapping_actor.get(),
                     message=Msg("%(mapping)s deleted.", mapping=describe_mapping(instance)))
        enqueue_mappings_reevaluation(instance.company_id)
