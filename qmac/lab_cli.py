"""``qmac lab``: the course labs (labs/): list, start, check, solution; and ``qmac waves``.

``qmac lab check N [DIR]`` grades a student tree: visible tests, then hidden tests seeded at
grading time (``--seed``, or ``--student ID`` with the term's secret in ``QMAC_LAB_TERM``), a
score per part, ``score X/Y`` last; exit 0 only on full marks, 1 otherwise, 2 on bad input.
"""

from pathlib import Path

from .cli_common import check_output_dir, removed_on_error

__all__ = ["add_commands"]


def _lab(number):
    from labs import lab

    return lab(number)


def _cmd_list(args):
    from labs import LABS

    for number in LABS:
        lab = _lab(number)
        print(f"{number}  {lab.title}  ({len(lab.parts)} parts, {lab.points} points, "
              f"about {lab.minutes} min; handout: {lab.folder / 'README.md'})")
    return 0


def _write(args, *, starter):
    from labs.trees import write_tree

    lab = _lab(args.number)
    check_output_dir("DIR", args.directory)
    directory = Path(args.directory)
    if directory.is_dir() and any(directory.iterdir()):
        raise ValueError(f"DIR must be a new or empty directory, not {str(directory)!r} "
                         "(nothing is overwritten)")
    import shutil

    with removed_on_error(directory):
        written = write_tree(lab.solution, directory, starter=starter)
        written.append(Path(shutil.copyfile(lab.folder / "README.md", directory / "README.md")))
    for path in written:
        print(path)
    if starter:
        print(f"handout: {directory / 'README.md'}; grade with: qmac lab check "
              f"{lab.number} {directory}")
    return 0


def _cmd_start(args):
    return _write(args, starter=True)


def _cmd_solution(args):
    return _write(args, starter=False)


def _cmd_check(args):
    from labs.grading import grade, hidden_seed

    lab = _lab(args.number)
    seed = hidden_seed(args.seed, args.student)
    directory = Path(args.directory)
    if not (directory / f"{lab.module}.py").is_file():
        raise ValueError(f"DIR must hold {lab.module}.py (qmac lab start {lab.number} DIR), "
                         f"not {str(directory)!r}")
    report = grade(lab, directory, seed=seed)
    print("\n".join(report.lines()))
    return 0 if report.full_marks else 1


def _cmd_waves(args):
    from sim.waves import render_vcd

    vcd = Path(args.vcd)
    if not vcd.is_file():
        raise ValueError(f"FILE must be a VCD file, not {str(vcd)!r} (no such file)")
    outputs = args.output or [str(vcd.with_suffix(".svg"))]
    for output in outputs:
        if not Path(output).parent.is_dir():
            raise ValueError(f"-o must be in an existing directory, not {output!r}")
    written = render_vcd(vcd, outputs, signals=args.signal, clock=args.clock,
                         start=args.start, end=args.end, radix=args.radix)
    for path in written:
        print(path)
    return 0


def _cmd_lab(args):
    raise ValueError("lab needs an action: list, start, check or solution (qmac lab --help)")


def add_commands(commands):
    """Register ``qmac lab`` and ``qmac waves`` on the ``qmac`` subcommand parser
    ``commands``."""
    from sim.waves import RADIXES

    p = commands.add_parser("waves", help="draw signals of a VCD file to SVG/PNG (matplotlib)")
    p.add_argument("vcd", metavar="FILE", help="a VCD file (Amaranth: sim.write_vcd)")
    p.add_argument("-o", "--output", action="append",
                   help="picture to write, .svg or .png (repeatable; default FILE.svg)")
    p.add_argument("--signal", action="append", default=[],
                   help="shell pattern on a signal's full or last name, e.g. '*acc*' "
                        "(repeatable, in order; default: the first 24 signals)")
    p.add_argument("--clock", default="clk", help="clock whose rising edges are numbered")
    p.add_argument("--start", type=int, help="first time shown (VCD time units)")
    p.add_argument("--end", type=int, help="last time shown (VCD time units)")
    p.add_argument("--radix", choices=RADIXES, default="signed", help="how buses are written")
    p.set_defaults(handler=_cmd_waves)

    lab = commands.add_parser("lab", help="course labs: list, start, check, solution")
    lab.set_defaults(handler=_cmd_lab)
    actions = lab.add_subparsers(dest="action", metavar="ACTION")

    p = actions.add_parser("list", help="the labs, their points and handouts")
    p.set_defaults(handler=_cmd_list)

    p = actions.add_parser("start", help="write lab N's starter tree into DIR")
    p.add_argument("number", type=int, metavar="N")
    p.add_argument("directory", metavar="DIR", help="a new or empty directory")
    p.set_defaults(handler=_cmd_start)

    p = actions.add_parser("check", help="grade DIR: visible then hidden tests, score X/Y "
                                         "(exit 0 only on full marks)")
    p.add_argument("number", type=int, metavar="N")
    p.add_argument("directory", metavar="DIR", nargs="?", default=".",
                   help="the student's tree (default: the current directory)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--seed", type=int, help="seed of the hidden tests")
    group.add_argument("--student", help="student id: the hidden seed is derived from it and "
                                         "$QMAC_LAB_TERM")
    p.set_defaults(handler=_cmd_check)

    p = actions.add_parser("solution", help="instructors: write lab N's reference into DIR")
    p.add_argument("number", type=int, metavar="N")
    p.add_argument("directory", metavar="DIR", help="a new or empty directory")
    p.set_defaults(handler=_cmd_solution)
