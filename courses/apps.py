from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Courses, rosters, assignments with deadlines, the gradebook and regrades."""

    name = "courses"
    verbose_name = "Courses and gradebook"

    def ready(self) -> None:
        # Recompute assignment scores when a submission is graded or a quiz answered.
        from courses import receivers  # noqa: F401
