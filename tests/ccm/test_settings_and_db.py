"""Settings layers and the database set-up (SQLite WAL, migrations that match the models)."""
from __future__ import annotations

import json
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from ccm.db import Database
from ccm.schema import Base
from ccm.settings import SettingsError, load_settings


def test_environment_overrides_defaults_and_types_follow_the_defaults():
    settings = load_settings(environ={"CCM_DATABASE_URL": "sqlite:///x.db", "CCM_WORKERS": "3", "CCM_EMAIL__ATTACH_PDF": "no"})
    assert settings["ccm"]["database_url"] == "sqlite:///x.db"
    assert settings["ccm"]["workers"] == 3
    assert settings["email"]["attach_pdf"] is False


def test_config_file_layer_and_unknown_keys_are_rejected_with_a_suggestion(tmp_path):
    config = tmp_path / "prod.toml"
    config.write_text('[channels]\nemail = "smtp://mail.example:587"\n', encoding="utf-8")
    assert load_settings(environ={"CCM_CONFIG": str(config)})["channels"]["email"] == "smtp://mail.example:587"

    config.write_text('[channels]\nemial = "x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"unknown key channels.emial \(did you mean 'email'\?\)"):
        load_settings(environ={"CCM_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="CCM_WORKRS: no such setting"):
        load_settings(environ={"CCM_WORKRS": "2"})
    with pytest.raises(SettingsError, match="expected a whole number"):
        load_settings(environ={"CCM_WORKERS": "two"})
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(environ={"CCM_CONFIG": str(tmp_path / "missing.toml")})


def test_a_bad_setting_makes_the_cli_fail_with_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    ccm = str(Path(sys.executable).with_name("ccm"))
    result = subprocess.run([ccm, "runs", "list"], env={"CCM_WORKRS": "2", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: environment variable CCM_WORKRS: no such setting (did you mean 'workers'?)"]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/ccm.db")
    db.upgrade()  # only an upgrade makes the file: a connection never does (a mistyped path stays empty)
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    db.dispose()


def test_upgrade_is_idempotent_and_migrations_match_the_models(tmp_path, runner):
    from alembic.script import ScriptDirectory

    from ccm.db import MIGRATIONS

    heads = ",".join(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and result.output.strip().endswith(f"at revision {heads}")
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    db = Database(f"sqlite:///{tmp_path}/var/ccm.db")
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()


def test_the_production_example_is_a_valid_configuration():
    from pathlib import Path

    from channels import channel_from_url

    example = Path(__file__).resolve().parents[2] / "config" / "production.example.toml"
    settings = load_settings(environ={"CCM_CONFIG": str(example)})
    assert settings["ccm"]["database_url"].startswith("postgresql+psycopg://")
    assert channel_from_url(settings["channels"]["email"]).name == "smtp"


def test_costs_must_be_decimal_amounts():
    assert load_settings(environ={"CCM_COSTS__PRINT": "0.85"})["costs"]["print"] == "0.85"
    with pytest.raises(SettingsError, match=r'costs.sms: expected a decimal amount such as "0.60"'):
        load_settings(environ={"CCM_COSTS__SMS": "cheap"})


def test_a_malformed_channel_url_is_refused_when_the_settings_load(tmp_path):
    from ccm.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"channels\.email: channel URL has no scheme"):
        load_settings({"channels": {"email": "smtp//mail.example.com"}})
    with pytest.raises(SettingsError, match=r"channels\.email: .*Port out of range"):
        load_settings({"channels": {"email": "smtp://mail.example.com:99999"}})
    with pytest.raises(SettingsError, match=r"channels\.sms: no channel takes URL scheme 'ftp'"):
        load_settings({"channels": {"sms": "ftp://files.example/sms"}})


def _ccm(tmp_path, url: str, *args: str):
    import subprocess
    import sys
    from pathlib import Path

    ccm = str(Path(sys.executable).with_name("ccm"))
    env = {**__import__("os").environ, "CCM_DATABASE_URL": url, "CCM_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([ccm, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_database_commands_answer_in_one_line_and_make_nothing_at_a_mistyped_path(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    upgrade = _ccm(tmp_path, f"sqlite:///{tmp_path}/a-file/ccm.db", "db", "upgrade")
    assert upgrade.returncode == 1 and upgrade.stderr.count("\n") == 1 and "Traceback" not in upgrade.stderr
    assert upgrade.stderr.startswith("Error: cannot make the database") and "a part of its folder is a file" in upgrade.stderr
    typo = tmp_path / "typo" / "ccm.db"
    for args in (["runs", "list"], ["db", "current"], ["segments", "list"]):
        answer = _ccm(tmp_path, f"sqlite:///{typo}", *args)
        assert answer.returncode == 1 and answer.stderr.startswith(f"Error: no database at {typo}"), (args, answer.stderr)
    assert not typo.parent.exists()  # no folder, no empty database
    made = _ccm(tmp_path, f"sqlite:///{typo}", "db", "upgrade")
    assert made.returncode == 0 and typo.is_file()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_periods_kept_in_attributes_become_rows(tmp_path, backend, request):
    """Migration 0010: the tier, code and stage of the period before, once kept in a
    customer's attributes, move to ``customer_periods``; the attributes lose the two keys."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    db = Database(url)
    try:
        db.upgrade("0009")
        with db.engine.begin() as connection:
            attributes = '{"vip_since": "2020", "computed_period": "2026-11", ' \
                         '"computed_before": {"period": "2026-10", "tier": "key", "abc": "B", "stage": "growth"}}'
            cast = "CAST(:a AS jsonb)" if backend == "postgresql" else ":a"
            connection.execute(text(
                "INSERT INTO customers (external_id, name, email, phone, locale, timezone, paperless, attributes, "
                "value_tier, abc_code, lifecycle_stage, row_hash, created_at, updated_at) VALUES ('E1', 'N', NULL, NULL, "
                f"'en_US', 'UTC', false, {cast}, 'vip', 'A', 'maturity', '-', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"a": attributes})
        db.upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT period, value_tier, abc_code, lifecycle_stage FROM customer_periods ORDER BY period")).all()
            left = connection.execute(text("SELECT attributes FROM customers")).scalar()
        assert [tuple(r) for r in rows] == [("2026-10", "key", "B", "growth"), ("2026-11", "vip", "A", "maturity")]
        assert (left if isinstance(left, dict) else json.loads(left)) == {"vip_since": "2020"}
    finally:
        db.dispose()
