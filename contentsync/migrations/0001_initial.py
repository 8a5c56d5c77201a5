"""ContentSource moved here from the dashboard app: the model changes app, the table stays.

The table keeps its name (`dashboard_contentsource`) and its rows; dashboard 0002 removes
the model from the dashboard app's state and relabels its content type.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("dashboard", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ContentSource",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        (
                            "path",
                            models.CharField(
                                help_text="Relative to the content folder, with / separators.",
                                max_length=300,
                                unique=True,
                            ),
                        ),
                        ("text", models.TextField()),
                        ("imported_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={"db_table": "dashboard_contentsource", "ordering": ["path"]},
                ),
            ],
        ),
    ]
