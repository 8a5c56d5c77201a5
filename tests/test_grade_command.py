"""`manage.py grade` and `manage.py check_content` as instructors and scripts use them."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parent.parent
LINEAR = ROOT / "content" / "exercises" / "linear-backward"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_grade_with_json_prints_only_the_result_json() -> None:
    output = run("grade", "linear-backward", str(LINEAR / "solution.py"), "--json")
    result = json.loads(output)  # the whole of stdout is one JSON document
    assert result["verdict"] == "accepted"
    assert result["score"] == 1.0
    assert {"checks", "feedback", "diagnosis", "timings", "isolation", "training"} <= set(result)


def test_grade_exits_normally_for_a_wrong_answer() -> None:
    output = run("grade", "linear-backward", str(LINEAR / "wrong" / "dw_transposed.py"), "--json", "--seed", "5")
    result = json.loads(output)
    assert result["verdict"] == "wrong_answer"
    assert result["diagnosis"][0]["mistake"] == "transposed"


def test_grade_exits_normally_for_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def linear_backward(dout, x, w, b):\n    return (\n")
    result = json.loads(run("grade", "linear-backward", str(broken), "--json"))
    assert result["verdict"] == "syntax_error"


def test_grade_without_json_prints_a_readable_report() -> None:
    output = run("grade", "relu-backward", str(ROOT / "content/exercises/relu-backward/wrong/mask_from_dout.py"))
    assert output.startswith("verdict: wrong_answer")
    assert "diagnosis dx: wrong_mask" in output
    assert "timings:" in output


def test_the_readable_report_escapes_terminal_control_sequences_from_the_submission(tmp_path: Path) -> None:
    hostile = tmp_path / "escapes.py"
    hostile.write_text(
        "def linear_backward(dout, x, w, b):\n"
        "    raise ValueError('\\x1b[2J\\x1b]0;owned\\x07\\rverdict: accepted\\u202e\\x9b31m')\n"
    )
    output = run("grade", "linear-backward", str(hostile))
    assert output.startswith("verdict: runtime_error")
    for raw in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert raw not in output
    assert "\\x1b[2J" in output and "\\rverdict: accepted" in output  # shown, escaped
    assert output.count("\nverdict:") == 0  # no forged line


def test_a_file_saved_with_a_utf8_byte_order_mark_is_graded_as_the_same_file(tmp_path: Path) -> None:
    with_bom = tmp_path / "solution_bom.py"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (LINEAR / "solution.py").read_bytes())
    result = json.loads(run("grade", "linear-backward", str(with_bom), "--json"))
    assert result["verdict"] == "accepted", result["feedback"]


def test_grade_fails_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        run("grade", "linear-backward", str(tmp_path / "missing.py"), "--json")


@pytest.mark.django_db
def test_grade_fails_for_an_unknown_exercise() -> None:
    with pytest.raises(CommandError, match="no exercise 'no-such-exercise'"):
        run("grade", "no-such-exercise", str(LINEAR / "solution.py"))


def test_check_content_passes_for_an_exercise_and_prints_a_table() -> None:
    output = run("check_content", "--slug", "linear-backward", "--seeds", "1")
    assert "linear-backward" in output
    assert "dw_transposed" in output
    assert "every reference accepted" in output
    assert "FAIL" not in output


def test_check_content_fails_when_a_known_wrong_variant_is_actually_right(tmp_path: Path) -> None:
    exercises = tmp_path / "exercises"
    shutil.copytree(LINEAR, exercises / "linear-backward")
    solution = (LINEAR / "solution.py").read_text()
    (exercises / "linear-backward" / "wrong" / "not_wrong.py").write_text(
        "# mistake: transposed\n# description: actually the reference\n" + solution
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("check_content", "--path", str(tmp_path), "--seeds", "1", stdout=out, stderr=StringIO())
    assert "accepted, but it is a known-wrong variant" in out.getvalue()


def test_check_content_reports_a_folder_that_does_not_parse(tmp_path: Path) -> None:
    exercises = tmp_path / "exercises"
    shutil.copytree(LINEAR, exercises / "linear-backward")
    (exercises / "linear-backward" / "wrong" / "db_mean.py").write_text("# description: no mistake line\n")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_content", "--path", str(tmp_path), stdout=out, stderr=StringIO())
    assert "db_mean.py:1: the first line must be '# mistake: <code>'" in out.getvalue()


def test_check_content_names_an_unknown_exercise_without_starting_the_grader(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.engine import Engine

    def not_needed() -> None:
        raise AssertionError("the sandbox was started for nothing to grade")

    monkeypatch.setattr(Engine, "get", staticmethod(not_needed))
    with pytest.raises(CommandError, match=r"no exercise named nope; known: .*linear-backward"):
        call_command("check_content", "--slug", "nope", stdout=StringIO())
