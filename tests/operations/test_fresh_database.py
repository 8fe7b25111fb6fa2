"""Issue 12: `migrate` alone prepares a database — the Fortnox callback and `dinero_setup` used to fail
with "no such table: kontera_cache" because only `manage.py run` created the cache table."""

import json
import sys

import pytest

from .processes import DATABASE_KINDS, ROOT, base_env, fresh_database, manage


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_a_database_prepared_by_migrate_alone_serves_the_oauth_callback_and_dinero_setup(kind, tmp_path):
    import subprocess

    with fresh_database(kind, tmp_path) as url:
        env = base_env(DATABASE_URL=url, DEBUG="false")
        migrated = manage("migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stderr
        run = subprocess.run([sys.executable, str(ROOT / "tests" / "operations" / "fresh_database.py")], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert result["cache_backend"] == "django.core.cache.backends.db.DatabaseCache"
    assert result["callback"]["status"] == 302
    assert "/admin/integrations/integration/" in result["callback"]["location"]
    assert result["callback"]["connected"] is True
    assert result["dinero_setup"] == "ok"
    assert result["dinero_status"] == "active"
    assert "Traceback" not in run.stderr and "kontera_cache" not in run.stderr
