"""Static files under production settings: the manifest storage the image's build step uses."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_MAP_COMMENT = re.compile(rb"[#@]\s*sourceMappingURL=(\S+?)(?:\s*\*/)?\s*$", re.MULTILINE)

pytestmark = pytest.mark.slow


def _vendor() -> Path:
    vendor = ROOT / "static" / "vendor"
    if not (vendor / "chart.js" / "chart.umd.js").exists():
        pytest.fail("static/vendor/ is not built: run scripts/build-assets.sh (make test does)")
    return vendor


def test_no_static_file_names_a_source_map_that_is_not_shipped() -> None:
    _vendor()
    dangling = []
    files = [Path(folder) / name for folder, _, names in os.walk(ROOT / "static", followlinks=True) for name in names]
    assert any(path.name == "chart.umd.js" for path in files)
    for path in files:
        if path.suffix not in {".js", ".mjs", ".css"}:
            continue
        for match in SOURCE_MAP_COMMENT.finditer(path.read_bytes()):
            target = match.group(1).decode()
            if not target.startswith("data:") and not (path.parent / target).exists():
                dangling.append(f"{path.relative_to(ROOT)} -> {target}")
    assert dangling == []


def _production_environment(root: Path) -> dict[str, str]:
    """The environment of a production deployment whose static files are collected into `root`/static."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GRADLAB_"))}
    environment.pop("DATABASE_URL", None)
    environment.update(
        GRADLAB_ENV="production",
        SECRET_KEY="collectstatic-test-key-" + "x7Qp2" * 10,
        ALLOWED_HOSTS="gradlab.example.org",
        GRADLAB_VAR_DIR=str(root / "var"),
        STATIC_ROOT=str(root / "static"),
    )
    return environment


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`manage.py collectstatic` run once under production settings; the deployment's root folder."""
    _vendor()
    root = tmp_path_factory.mktemp("production")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_production_environment(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_collectstatic_passes_with_production_settings(collected: Path) -> None:
    tmp_path = collected
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    for name in ("vendor/chart.js/chart.umd.js", "vendor/katex/katex.min.css", "js/drafts.js", "css/site.css"):
        hashed = manifest[name]
        assert hashed != name and (tmp_path / "static" / hashed).is_file(), name
    # The fonts KaTeX's stylesheet refers to were rewritten to their hashed names.
    css = (tmp_path / "static" / manifest["vendor/katex/katex.min.css"]).read_text()
    assert "fonts/KaTeX_Main-Regular." in css and re.search(r"KaTeX_Main-Regular\.[0-9a-f]{12}\.woff2", css)


# Run in a production process (settings are read once, at start): WhiteNoise's middleware, through
# Django's test client over HTTPS (production redirects HTTP), answers each GET in argv as JSON.
SERVE = """
import gzip, json, sys
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="gradlab.example.org")
answers = []
for path, encoding in json.loads(sys.argv[1]):
    response = client.get(path, secure=True, **({"HTTP_ACCEPT_ENCODING": encoding} if encoding else {}))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    answers.append({"status": response.status_code, "headers": dict(response.headers), "body": body.hex()})
print(json.dumps(answers))
"""

CACHE_MAX_AGE = re.compile(r"max-age=(\d+)")
ONE_YEAR = 365 * 24 * 60 * 60


def _serve(root: Path, requests: list[tuple[str, str]]) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(requests)],
        cwd=ROOT,
        env={**_production_environment(root), "DJANGO_SETTINGS_MODULE": "gradlab.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_collected_css_and_js_have_compressed_copies(collected: Path) -> None:
    static = collected / "static"
    manifest = json.loads((static / "staticfiles.json").read_text())["paths"]
    names = [name for name in manifest if name.endswith((".css", ".js"))]
    assert len(names) >= 10 and {"css/site.css", "js/drafts.js", "vendor/codemirror.bundle.js"} <= set(names)
    for name in names:
        for stored in (name, manifest[name]):
            original = (static / stored).read_bytes()
            assert gzip.decompress((static / f"{stored}.gz").read_bytes()) == original, stored
            brotli_copy = static / f"{stored}.br"
            assert not brotli_copy.exists() or brotli_copy.stat().st_size < len(original), stored


def test_hashed_static_files_are_served_compressed_and_cached_forever(collected: Path) -> None:
    static = collected / "static"
    manifest = json.loads((static / "staticfiles.json").read_text())["paths"]
    hashed_css, hashed_js = manifest["css/site.css"], manifest["vendor/codemirror.bundle.js"]
    answers = _serve(
        collected,
        [
            (f"/static/{hashed_css}", "gzip, deflate"),
            (f"/static/{hashed_js}", "gzip"),
            (f"/static/{hashed_js}", ""),
            ("/static/css/site.css", "gzip"),
        ],
    )
    for answer, name in zip(answers[:3], (hashed_css, hashed_js, hashed_js), strict=True):
        headers = answer["headers"]
        assert answer["status"] == 200, (name, answer["status"])
        assert isinstance(headers, dict)
        cache = headers["Cache-Control"]
        match = CACHE_MAX_AGE.search(cache)
        assert match and int(match.group(1)) >= ONE_YEAR and "immutable" in cache and "public" in cache, cache
        assert "Accept-Encoding" in headers.get("Vary", ""), headers
        assert bytes.fromhex(str(answer["body"])) == (static / name).read_bytes(), name
    # Sent compressed when the client accepts gzip, plain when it does not.
    css, js, js_plain = answers[0]["headers"], answers[1]["headers"], answers[2]["headers"]
    assert isinstance(css, dict) and isinstance(js, dict) and isinstance(js_plain, dict)
    assert css["Content-Encoding"] == "gzip" and js["Content-Encoding"] == "gzip"
    assert int(js["Content-Length"]) < (static / hashed_js).stat().st_size / 2
    assert "Content-Encoding" not in js_plain
    # The unhashed name may change meaning at the next deployment: cached briefly, never immutable.
    unhashed = answers[3]["headers"]
    assert answers[3]["status"] == 200 and isinstance(unhashed, dict)
    assert "immutable" not in unhashed["Cache-Control"]
    short = CACHE_MAX_AGE.search(unhashed["Cache-Control"])
    assert short and int(short.group(1)) <= 60, unhashed["Cache-Control"]
    assert unhashed["Content-Encoding"] == "gzip"
