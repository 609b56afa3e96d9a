"""Every lab's autograder can pass and can fail: the reference solution scores full marks,
the untouched starter tree zero on every part, on the visible data and on a hidden seed."""

import pytest

from labs import LABS, lab
from labs.grading import hidden_seed
from labs.trees import starter_text, write_tree
from qmac.cli import main

#: Hidden seed of these tests (any seed must do; a fixed one keeps failures reproducible).
SEED = 12345


@pytest.fixture(params=sorted(LABS), ids=lambda number: f"lab{number}")
def each_lab(request):
    return lab(request.param)


def test_solution_scores_full_marks(each_lab, tmp_path):
    from labs.grading import grade

    write_tree(each_lab.solution, tmp_path, starter=False)
    report = grade(each_lab, tmp_path, seed=SEED)
    assert report.full_marks, "\n".join(report.lines())


def test_starter_scores_zero_on_every_part(each_lab, tmp_path):
    from labs.grading import grade

    write_tree(each_lab.solution, tmp_path, starter=True)
    report = grade(each_lab, tmp_path, seed=SEED)
    assert [result.score for result in report.results] == [0] * len(each_lab.parts), \
        "\n".join(report.lines())
    assert all("not implemented" in result.visible for result in report.results)


def test_hint_names_the_failing_function(tmp_path, capsys):
    """A wrong answer (not just a missing one) fails its part and the hint names it."""
    first = lab(1)
    write_tree(first.solution, tmp_path, starter=False)
    path = tmp_path / f"{first.module}.py"
    right = "return q + (above or (tie and q % 2 == 1))"
    assert right in path.read_text()
    path.write_text(path.read_text().replace(right, "return q + above"))   # ties go down
    assert main(["lab", "check", "1", str(tmp_path), "--seed", "7"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"part 1 {first.parts[0].name}: 0/{first.parts[0].points}"
    assert out[-1].startswith("score ") and out[-1] != f"score {first.points}/{first.points}"
    assert "  hint: look at round_div in fixedpoint.py" in out
    assert any(line.startswith("  visible: wrong: round_div(") and "'half_to_even'" in line
               for line in out)


def test_cli_start_check_solution(tmp_path, capsys):
    student, reference = tmp_path / "student", tmp_path / "reference"
    assert main(["lab", "start", "1", str(student)]) == 0
    assert (student / "README.md").is_file() and (student / "fixedpoint.py").is_file()
    assert main(["lab", "check", "1", str(student), "--student", "alice"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"score 0/{lab(1).points}"
    assert main(["lab", "solution", "1", str(reference)]) == 0
    assert "# SOLUTION" not in (reference / "fixedpoint.py").read_text()
    assert main(["lab", "check", "1", str(reference), "--seed", "99"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"score {lab(1).points}/{lab(1).points}"


@pytest.mark.parametrize("argv, message", [
    (["lab", "start", "1"], "the following arguments are required: DIR"),
    (["lab", "check", "0"], "lab must be one of"),
    (["lab", "check", "1", "--seed", "-1"], "seed must be in [0, 4294967295], not -1"),
    (["lab", "check", "1", "/nonexistent"], "DIR must hold fixedpoint.py"),
    (["lab"], "lab needs an action"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and not captured.out


def test_start_refuses_a_directory_with_files(tmp_path, capsys):
    (tmp_path / "mine.py").write_text("work = 1\n")
    assert main(["lab", "start", "1", str(tmp_path)]) == 2
    assert (tmp_path / "mine.py").read_text() == "work = 1\n"


def test_hidden_seed_follows_student_and_term():
    assert hidden_seed(student="alice", term="2027") == hidden_seed(student="alice", term="2027")
    assert hidden_seed(student="alice", term="2027") != hidden_seed(student="bob", term="2027")
    assert hidden_seed(student="alice", term="2027") != hidden_seed(student="alice", term="2028")
    assert hidden_seed(seed=5, student="alice") == 5


def test_starter_text_keeps_signature_docstring_and_hint():
    source = ('def f(x):\n    """Doc."""\n    # SOLUTION: add one\n    # to x\n'
              '    return x + 1\n    # END SOLUTION\n')
    assert starter_text(source) == ('def f(x):\n    """Doc."""\n    # TODO: add one\n'
                                    '    # to x\n    raise NotImplementedError("TODO: f")\n')
    with pytest.raises(ValueError, match="never ends"):
        starter_text("def f():\n    # SOLUTION\n    pass\n")


def test_importing_the_answers_scores_zero(tmp_path):
    """A student module that imports golden/ (where the answers are) fails every part."""
    from labs.grading import grade

    first = lab(1)
    write_tree(first.solution, tmp_path, starter=False)
    path = tmp_path / f"{first.module}.py"
    path.write_text("from golden.rounding import round_div  # noqa\n" + path.read_text())
    report = grade(first, tmp_path, seed=SEED)
    assert report.score == 0
    assert "imports golden.rounding" in report.results[0].visible


@pytest.mark.slow
def test_lab7_reads_a_real_build(tmp_path):
    """Lab 7's build step, as a student runs it: an iCEBreaker build (about a minute of
    Yosys and nextpnr), its report.json read by the reference summarize()."""
    import json

    from labs.grading import load_student

    assert main(["build", "--board", "icebreaker", "--rows", "2", "--cols", "2", "--bits", "8",
                 "--kmax", "16", "-o", str(tmp_path / "ice")]) == 0
    report = json.loads((tmp_path / "ice" / "report.json").read_text())
    write_tree(lab(7).solution, tmp_path / "lab7", starter=False)
    summary = load_student(tmp_path / "lab7", "board").summarize(report)
    assert summary["timing_pass"] == (report["fmax_sync_mhz"] >= report["sync_clock_mhz"])
    assert 0 < summary["logic_percent"] <= 100 and summary["logic_per_pe"] > 0


def test_grade_class_writes_a_csv(tmp_path, monkeypatch):
    """A class of three: the reference, the starter, and code that does not import."""
    import csv

    from labs.grade_class import main as grade_class

    monkeypatch.setenv("QMAC_LAB_TERM", "test-term")
    first = lab(1)
    submissions = tmp_path / "submissions"
    write_tree(first.solution, submissions / "alice", starter=False)
    write_tree(first.solution, submissions / "bob", starter=True)
    (submissions / "carol").mkdir()
    (submissions / "carol" / "fixedpoint.py").write_text("def round_div(:\n")
    assert grade_class(["1", str(submissions), "-o", str(tmp_path / "grades.csv"),
                        "--jobs", "2"]) == 0
    rows = {row["student"]: row for row in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["alice"]["score"] == str(first.points) and rows["alice"]["status"] == "ok"
    assert [rows["alice"][f"part{i + 1}"] for i in range(len(first.parts))] == \
        [str(part.points) for part in first.parts]
    assert rows["bob"]["score"] == rows["carol"]["score"] == "0"
    assert rows["alice"]["seed"] == str(hidden_seed(student="alice", term="test-term"))


@pytest.mark.parametrize("source, message", [
    ("import sys\nsys.exit(3)\n", "SystemExit"),
    ("while True:\n    pass\n", "took longer than 1 s"),
    ("def round_div(:\n", "SyntaxError"),
])
def test_a_module_that_cannot_load_scores_zero(source, message, tmp_path, monkeypatch):
    """Exits, endless loops and syntax errors at import: every part fails, nothing escapes."""
    from labs import grading

    monkeypatch.setattr(grading, "PART_TIME_LIMIT", 1)
    (tmp_path / "fixedpoint.py").write_text(source)
    report = grading.grade(lab(1), tmp_path, seed=SEED)
    assert report.score == 0
    assert all(message in result.visible for result in report.results), report.lines()


def test_a_loop_in_a_function_fails_its_part_only(tmp_path, monkeypatch):
    from labs import grading

    monkeypatch.setattr(grading, "PART_TIME_LIMIT", 1)
    write_tree(lab(1).solution, tmp_path, starter=False)
    path = tmp_path / "fixedpoint.py"
    anchor = "    sign = -1 if bits >> 31 else 1\n"        # in float32_value
    assert anchor in path.read_text()
    path.write_text(path.read_text().replace(anchor, "    while True:\n        pass\n" + anchor))
    report = grading.grade(lab(1), tmp_path, seed=SEED)
    assert not report.results[1].passed
    assert "took longer than 1 s (at fixedpoint.py:" in report.results[1].visible
    # the other parts ran (pass or, on a loaded machine, time out on their own)
    assert all(r.visible != report.results[1].visible for r in report.results[2:])
