"""`manage.py export_content [--path DIR]`: write the database back to content/ files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from contentsync.export import export_content


class Command(BaseCommand):
    help = (
        "Write lessons, quiz questions and exercises from the database to content/ files "
        "(files unchanged since their import are written back byte for byte)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--path", default=str(settings.CONTENT_DIR), help="content folder (default: content/)")

    def handle(self, *args: Any, **options: Any) -> None:
        root = Path(options["path"]).resolve()
        report = export_content(root)
        for relative in report.canonical:
            self.stdout.write(f"rewritten {relative} (edited since import: canonical form)")
        self.stdout.write(
            self.style.SUCCESS(
                f"exported {report.written} file(s) to {root}: {len(report.verbatim)} as imported, "
                f"{len(report.canonical)} rewritten, {len(report.copied)} code and statement files"
            )
        )
