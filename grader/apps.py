from django.apps import AppConfig


class GraderConfig(AppConfig):
    name = "grader"
    verbose_name = "Exercises and grading"

    def ready(self) -> None:
        from grader import auth  # noqa: F401 - connects the receiver that revokes tokens on a password change
