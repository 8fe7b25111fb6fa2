from django_q.models import Schedule

from ...schedules import SCHEDULES
from ..base import KonteraCommand


class Command(KonteraCommand):
    help = "Declare every recurring background job (idempotent: run it as often as you like)."

    def run(self, **options):
        declared = []
        for spec in SCHEDULES:
            schedule, created = Schedule.objects.update_or_create(
                name=spec.name,
                defaults={"func": spec.func, "schedule_type": Schedule.MINUTES, "minutes": spec.minutes,
                          "repeats": -1},
            )
            declared.append({"name": spec.name, "func": spec.func, "every_minutes": spec.minutes,
                             "created": created})
        names = [spec.name for spec in SCHEDULES]
        stale = Schedule.objects.filter(name__startswith="kontera: ").exclude(name__in=names)
        removed = list(stale.values_list("name", flat=True))
        stale.delete()
        return {"schedules": declared, "removed": removed}

    def render(self, result):
        for item in result["schedules"]:
            self.stdout.write(f"{'created' if item['created'] else 'ok':8} {item['name']} "
                              f"(every {item['every_minutes']} min) → {item['func']}")
        for name in result["removed"]:
            self.stdout.write(f"removed  {name}")
