"""Grade a class: every submission folder of one lab into a CSV.

    python -m labs.grade_class N SUBMISSIONS -o grades.csv [--jobs 2] [--timeout 600]

SUBMISSIONS holds one folder per student, named by the student's id (as the course's
submission system unpacks them). Each is graded by ``qmac lab check N FOLDER --student ID`` in
its own process (a student's code cannot crash or hang the others; ``--timeout`` seconds at
most), so the hidden tests are seeded from the id and the term's secret in ``QMAC_LAB_TERM``
(labs/README.md): the same submission gets the same grade when graded again, and every
student gets other hidden data. The CSV has a row per student: id, seed, the points of each
part, the score, the maximum, and ``ok`` or why the grading failed.
"""

import argparse
import csv
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labs import lab as get_lab
from labs.grading import hidden_seed

__all__ = ["grade_submission", "main"]

_PART = re.compile(r"^part (\d+) .*: (\d+)/(\d+)$")
_SCORE = re.compile(r"^score (\d+)/(\d+)$")
#: Seconds one submission may take by default (a lab takes under 2 minutes).
DEFAULT_TIMEOUT = 600


def grade_submission(number, folder, student, *, timeout=DEFAULT_TIMEOUT):
    """One CSV row (a dict) for ``folder``, graded in a subprocess."""
    lab = get_lab(number)
    row = {"student": student, "seed": hidden_seed(student=student)}
    row.update({f"part{i}": 0 for i in range(1, len(lab.parts) + 1)})
    row.update(score=0, max=lab.points, status="ok")
    command = [sys.executable, "-m", "qmac.cli", "lab", "check", str(number), str(folder),
               "--student", student]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        row["status"] = f"timed out after {timeout} s"
        return row
    lines = done.stdout.splitlines()
    for line in lines:
        if match := _PART.match(line):
            row[f"part{match[1]}"] = int(match[2])
    score = _SCORE.match(lines[-1]) if lines else None
    if score is None:
        row["status"] = (done.stderr.strip().splitlines() or ["no score printed"])[-1]
    else:
        row["score"] = int(score[1])
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m labs.grade_class",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("number", type=int, metavar="N", help="the lab")
    parser.add_argument("submissions", type=Path, help="one folder per student id")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds per submission")
    args = parser.parse_args(argv)
    try:
        lab = get_lab(args.number)
    except ValueError as error:
        parser.error(str(error))
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS must be a folder, not {str(args.submissions)!r}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    folders = sorted(path for path in args.submissions.iterdir() if path.is_dir())
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda folder: grade_submission(
            args.number, folder, folder.name, timeout=args.timeout), folders))
    fields = ["student", "seed", *(f"part{i}" for i in range(1, len(lab.parts) + 1)),
              "score", "max", "status"]
    with open(args.output, "w", newline="") as file:
        writer = csv.DictWriter(file, fields)
        writer.writeheader()
        writer.writerows(rows)
    full = sum(row["score"] == lab.points for row in rows)
    print(f"{len(rows)} submissions of lab {args.number} graded ({full} with full marks): "
          f"{args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
