"""docker-compose.yml and the Dockerfile: structure checked here, since no Docker engine runs on these machines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_redis_web_worker_and_beat() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"


def test_app_services_are_built_from_the_one_dockerfile_in_production_mode() -> None:
    services = _compose()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["build"] == ".", name
        assert services[name]["environment"]["GRADLAB_ENV"] == "production"
        assert "postgres" in services[name]["depends_on"]
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert (ROOT / "Dockerfile").is_file()


def test_the_worker_listens_on_the_grading_queue_and_may_create_sandbox_namespaces() -> None:
    worker = _compose()["services"]["worker"]
    command = worker["command"]
    assert command[command.index("-Q") + 1] == "grading"
    assert "seccomp=unconfined" in worker["security_opt"]


def test_every_variable_compose_interpolates_is_documented_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))
    assert used <= documented, used - documented
    assert "SECRET_KEY" in documented


def test_the_dockerfile_installs_the_sandbox_and_pins_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "bubblewrap" in dockerfile
    assert "requirements.lock" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)


def test_only_the_tls_proxy_is_published_and_gunicorn_trusts_the_proxy_header_from_it_alone() -> None:
    services = _compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    proxy = services["proxy"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    proxy_address = proxy["networks"]["edge"]["ipv4_address"]
    web = services["web"]
    assert web["environment"]["TRUSTED_PROXIES"] == f"{proxy_address}/32"
    command = web["command"]
    assert command[command.index("--forwarded-allow-ips") + 1] == proxy_address
    # Only the proxy and gunicorn share the edge network; the rest is internal.
    on_edge = {name for name, service in services.items() if "edge" in (service.get("networks") or [])}
    assert on_edge == {"proxy", "web"}
    assert _compose()["networks"]["backend"]["internal"] is True
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "tls {$GRADLAB_TLS" in caddyfile and "reverse_proxy {$GRADLAB_UPSTREAM" in caddyfile


def test_the_image_installs_the_runtime_lock_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert installs == ["pip install -r requirements.lock"]
    assert "requirements-dev" not in dockerfile
    runtime = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    tools = {"pytest", "pytest-django", "mypy", "ruff", "playwright", "schemathesis", "hypothesis", "django-stubs"}
    assert not runtime & tools
    assert {"django", "gunicorn", "celery", "django-axes", "prometheus-client"} <= runtime
