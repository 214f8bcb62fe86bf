"""Settings refuse to start a production process without its secrets, with one readable line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x9!vT2#qL7@mR4$wZ8^nB1&kP6*cF3(hJ5)dS0_gY-uE+aQ=oI|eW;rU:tO<pA>sD?fG",
    "ALLOWED_HOSTS": "crm.example.com",
    "DATABASE_URL": "postgres://broker@db.example.com:5432/broker",
    "CELERY_BROKER_URL": "redis://cache.example.com:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
}


def _django(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "CELERY", "EMAIL"))}
    clean.update(env, DJANGO_SETTINGS_MODULE="brokerage.settings", VAR_DIR=str(ROOT / "var" / "settings-test"))
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_without_secrets_stops_with_one_line_naming_them():
    result = _django({"DJANGO_ENV": "production"}, "check")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DJANGO_ENV=production needs SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, "
        "CELERY_BROKER_URL, EMAIL_URL to be set."
    ]


def test_unknown_environment_name_is_refused():
    result = _django({"DJANGO_ENV": "prod"}, "check")

    assert result.returncode == 1
    assert "DJANGO_ENV='prod' is not one of local, test, production" in result.stderr


def test_malformed_value_names_the_variable():
    result = _django({"DEBUG": "perhaps"}, "check")

    assert result.returncode == 1
    assert result.stderr.startswith("Configuration error: DEBUG is not valid")


def test_check_deploy_is_clean_with_the_documented_production_variables():
    result = _django(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
