"""ContentSource now belongs to the contentsync app (contentsync 0001): drop it from this app's state.

No table changes; the content type is relabelled so nothing attached to it is lost.
"""

from typing import Any

from django.db import migrations


def relabel_content_type(apps: Any, schema_editor: Any, source: str = "dashboard", target: str = "contentsync") -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=target, model="contentsource").exists():
        ContentType.objects.using(db).filter(app_label=source, model="contentsource").update(app_label=target)


def relabel_content_type_back(apps: Any, schema_editor: Any) -> None:
    relabel_content_type(apps, schema_editor, source="contentsync", target="dashboard")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("dashboard", "0001_initial"),
        ("contentsync", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="ContentSource")],
        ),
        migrations.RunPython(relabel_content_type, relabel_content_type_back),
    ]
