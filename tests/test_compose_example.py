"""The docker-compose example cannot be run here (no containers), so its parts are checked
against what they configure: every replica's environment is valid `Settings` naming the
shared Postgres, and the proxy sends traffic to exactly the replicas the file defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serving.settings import Settings

REPO = Path(__file__).resolve().parents[1]
yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def _substitute(value: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?message}` with the variables unset."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{\w+:\?[^}]*\}", "k1", value)


def test_every_replica_environment_is_valid_settings_on_one_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = _compose()["services"]
    replicas = {name: s for name, s in services.items() if "THINKRAG_DATABASE_URL" in str(s)}
    assert sorted(replicas) == ["replica1", "replica2"]
    urls, names = set(), set()
    for service in replicas.values():
        with monkeypatch.context() as m:
            for key, value in service["environment"].items():
                m.setenv(key, _substitute(str(value)))
            settings = Settings()
        assert settings.postgres_url is not None and settings.api_keys
        assert settings.index_dir == Path("/indexes/current")
        urls.add(settings.postgres_url)
        names.add(settings.replica_name)
        assert any(v.endswith(":ro") for v in service["volumes"])  # the index is read-only
    assert len(urls) == 1 and len(names) == 2  # one database, two distinct replicas
    db = services["postgres"]["environment"]
    assert urls == {
        f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{db['POSTGRES_DB']}"
    }


def test_the_proxy_balances_over_the_replicas_without_buffering_streams() -> None:
    conf = (REPO / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    upstream = set(re.findall(r"server (\w+):8080", conf))
    assert upstream == {"replica1", "replica2"}
    assert "proxy_buffering off" in conf  # server-sent events flow as they are written
    proxy = _compose()["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
