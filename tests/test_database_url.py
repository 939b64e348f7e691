"""DATABASE_URL: every scheme the app has a driver for migrates and serves; any other is refused in one line.

Each case runs ``manage.py`` in a child process, as the release phase and a laptop do. The Postgres cases need
DATABASE_URL (Postgres) in the test run's environment; each gets a database of its own, dropped at the end.
"""

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import servers


def manage(*args, **env_values):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DATABASE_", "SQLITE_"))}
    env.pop("DYNO", None)
    env.update(DJANGO_SETTINGS_MODULE="chatsite.settings", **env_values)
    return subprocess.run([servers.PYTHON, "manage.py", *args], env=env, cwd=servers.REPO, capture_output=True,
                          text=True, timeout=120)


def assert_ok(result):
    assert result.returncode == 0, result.stderr


def test_a_sqlite_url_migrates_and_checks(tmp_path):
    url = f"sqlite:///{tmp_path}/db.sqlite3"  # tmp_path is absolute: four slashes in all
    assert_ok(manage("migrate", "--noinput", DATABASE_URL=url))
    assert_ok(manage("check", "--database", "default", DATABASE_URL=url))
    assert_ok(manage("check", "--deploy", "--fail-level", "ERROR", DATABASE_URL=url))
    (database,) = tmp_path.glob("*.sqlite3")
    assert database.stat().st_size > 0


@pytest.fixture
def fresh_postgres(procs):
    """The URL of a new empty Postgres database (``procs`` drops it at the end)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        if servers.REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1: the Postgres URL cases need DATABASE_URL (Postgres)")
        pytest.skip("needs DATABASE_URL (Postgres)")
    return servers._fresh_postgres(url)


def test_every_postgres_scheme_migrates_and_checks(fresh_postgres):
    assert_ok(manage("migrate", "--noinput", DATABASE_URL=fresh_postgres, DATABASE_SSL_REQUIRE="0"))
    for scheme in ("postgres", "postgresql", "pgsql"):
        url = urlunsplit(urlsplit(fresh_postgres)._replace(scheme=scheme))
        for pool in ("6", "0"):
            result = manage("showmigrations", "chat", DATABASE_URL=url, DATABASE_POOL_MAX=pool,
                            DATABASE_SSL_REQUIRE="0")
            assert_ok(result)
            assert "[X] 0001_initial" in result.stdout and "[ ]" not in result.stdout
            assert_ok(manage("check", "--database", "default", DATABASE_URL=url, DATABASE_POOL_MAX=pool,
                             DATABASE_SSL_REQUIRE="0"))


@pytest.mark.parametrize(
    "url, found",
    [
        ("mysql://chat:hunter2-secret@db.example.com/chat", "mysql://"),
        ("spatialite:///{dir}/db.sqlite3", "spatialite://"),
        ("postgis://chat:hunter2-secret@db.example.com/chat", "postgis://"),
        ("nosuchdb://chat:hunter2-secret@host/chat", "nosuchdb://"),
        ("{dir}/db.sqlite3", "no scheme"),
    ],
)
def test_any_other_url_is_refused_in_one_line_without_the_url(tmp_path, url, found):
    result = manage("migrate", "--noinput", DATABASE_URL=url.format(dir=tmp_path))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "django.core.exceptions.ImproperlyConfigured: DATABASE_URL must start with one of "
        f"postgres://, postgresql://, pgsql://, sqlite://, not {found}"
    )
    assert "hunter2" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing was created
