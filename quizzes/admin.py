"""Admin registrations of the quizzes app.

Lesson admin belongs here too (lesson-pages engineer); the quiz question and
attempt admins live in quizzes/quiz_admin.py and register on import.
"""

from quizzes import quiz_admin  # noqa: F401  (registers QuizQuestion and QuizAttempt)
