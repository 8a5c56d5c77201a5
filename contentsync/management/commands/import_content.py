"""`manage.py import_content [--check] [--path DIR]`: validate and upsert content/ files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string

from contentsync.files import ContentReport


class Command(BaseCommand):
    help = "Validate the files under content/ and upsert them into the database (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="validate only; write nothing")
        parser.add_argument("--path", default=str(settings.CONTENT_DIR), help="content folder (default: content/)")

    def handle(self, *args: Any, **options: Any) -> None:
        root = Path(options["path"]).resolve()
        if not root.is_dir():
            raise CommandError(f"{root} is not a folder")
        report = ContentReport(root=root)
        write = not options["check"]
        for dotted in settings.CONTENT_LOADERS:
            loader = import_string(dotted)
            with transaction.atomic():
                loader(root, report, write=write)
        # --check writes nothing: it says what an import would do.
        created, updated = ("created  ", "updated  ") if write else ("would create", "would update")
        for name in report.created:
            self.stdout.write(f"{created} {name}")
        for name in report.updated:
            self.stdout.write(f"{updated} {name}")
        if report.unchanged:
            self.stdout.write(f"unchanged {len(report.unchanged)} item(s)")
        for note in report.notes:
            self.stdout.write(f"note      {note}")
        for error in report.errors:
            self.stderr.write(f"error     {error}")
        if report.errors:
            raise CommandError(
                f"{len(report.errors)} content error(s); the other files were {'checked' if not write else 'imported'}"
            )
        self.stdout.write(self.style.SUCCESS("content OK" if not write else "content imported"))
