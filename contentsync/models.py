"""What the content-sync app stores: the text of each content file as last imported."""

from __future__ import annotations

from django.db import models


class ContentSource(models.Model):
    """The exact text of a content file at its last import (`lessons/<slug>.md`, ...).

    `manage.py export_content` writes this text back, byte for byte, when the rows it
    was imported into still mean the same thing; once they were edited (in the admin)
    it writes a canonical file instead. See contentsync/export.py.
    """

    path = models.CharField(max_length=300, unique=True, help_text="Relative to the content folder, with / separators.")
    text = models.TextField()
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table kept its name when the model moved here from the dashboard app (contentsync 0001).
        db_table = "dashboard_contentsource"
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
