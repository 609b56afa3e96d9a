"""What the two command lines share: one way to answer bad input, the array options and the
configuration they describe, and output paths checked before anything is built.

``qmac`` (:mod:`qmac.cli`) and the board flow on its own (``python -m boards.cli``) both end in
:func:`run`: a bad argument, a bad value, an unreadable file or an output path that cannot be
written is one line on stderr, ``<program> <command>: error: …``, and exit status
:data:`BAD_INPUT`, with no traceback. Handlers validate everything before they build or
simulate anything, and :func:`removed_on_error` takes back an output folder or file that a
failing command created.
"""

import argparse
import contextlib
import shutil
import sys
import tomllib
from pathlib import Path

__all__ = ["BAD_INPUT", "Parser", "UsageError", "add_array_options", "array_config",
           "check_output_dir", "check_output_file", "removed_on_error", "run"]

#: Exit status of every command given bad input (argparse's own convention).
BAD_INPUT = 2
#: What a handler raises for bad input: reported in one line, exit status :data:`BAD_INPUT`.
BAD_INPUT_ERRORS = (ValueError, TypeError, OSError)


class UsageError(Exception):
    """A command line argparse refuses (unknown option, wrong type, missing value)."""


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line (no usage block) and
    raise :class:`UsageError` instead of exiting, so that :func:`run` reports them."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _one_line(error):
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def run(parser, argv=None):
    """Parse ``argv`` with ``parser`` (a :class:`Parser` with subcommands that set
    ``handler``), run the command and return its exit status: :data:`BAD_INPUT` with one line
    on stderr for bad input."""
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(_one_line(error), file=sys.stderr)
        return BAD_INPUT
    except SystemExit as done:          # --help, --version
        return done.code
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_INPUT
    try:
        return args.handler(args)
    except BAD_INPUT_ERRORS as error:
        print(f"{parser.prog} {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return BAD_INPUT


def add_array_options(parser, *, size=True, name=False):
    """The :class:`hw.config.ArrayConfig` options (``--rows`` … ``--config``); ArrayConfig
    checks their values. ``size=False`` leaves out ``--rows``/``--cols``, ``name=True`` adds
    ``--name``."""
    if size:
        parser.add_argument("--rows", type=int, help="array rows")
        parser.add_argument("--cols", type=int, help="array columns")
    parser.add_argument("--bits", type=int,
                        help="activation, weight and output bits (default 8)")
    parser.add_argument("--weight-bits", type=int, help="weight bits (default: --bits)")
    parser.add_argument("--kmax", type=int,
                        help="deepest dot product of one pass (weight-stationary: rows)")
    parser.add_argument("--dataflow", choices=["os", "ws", "output_stationary",
                                               "weight_stationary"])
    if name:
        parser.add_argument("--name", help="top-level module name")
    parser.add_argument("--config", metavar="TOML",
                        help="ArrayConfig file (options given on the command line win)")


def _load_toml(path):
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ValueError(f"--config {path}: {error.strerror or error}") from None
    except ValueError as error:      # TOMLDecodeError, or bytes that are not UTF-8
        raise ValueError(f"--config {path} is not valid TOML: {error}") from None


def _weight_stationary(dataflow):
    from hw.config import ArrayConfig

    return ArrayConfig(dataflow=dataflow).weight_stationary


def array_config(args, *, rows=None, cols=None):
    """The :class:`hw.config.ArrayConfig` of ``--config`` with the other array options (and
    ``rows``/``cols``, when given) on top.

    A weight-stationary array's kmax is its rows, so a kmax read from the file is dropped when
    the command line changes rows or dataflow (and gives no ``--kmax``): it belonged to the
    file's rows.
    """
    from hw.config import ArrayConfig

    values = _load_toml(args.config) if args.config else {}
    overrides = {"rows": rows if rows is not None else getattr(args, "rows", None),
                 "cols": cols if cols is not None else getattr(args, "cols", None),
                 "kmax": args.kmax, "dataflow": args.dataflow,
                 "name": getattr(args, "name", None)}
    if args.bits is not None:
        overrides.update(act_bits=args.bits, out_bits=args.bits, weight_bits=args.bits)
    if args.weight_bits is not None:
        overrides["weight_bits"] = args.weight_bits
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if ("kmax" in values and "kmax" not in overrides and {"rows", "dataflow"} & set(overrides)
            and _weight_stationary(overrides.get("dataflow", values.get("dataflow",
                                                                        "output_stationary")))):
        del values["kmax"]
    try:
        return ArrayConfig.from_dict({**values, **overrides})
    except (ValueError, TypeError) as error:
        if not args.config:
            raise
        raise type(error)(f"{error} (parameters from --config {args.config} and the "
                          "command line)") from None


def _first_existing(path):
    return next(parent for parent in (path, *path.parents) if parent.exists())


def check_output_dir(option, path):
    """ValueError unless ``path`` is a directory or can be made one (no file in the way)."""
    path = Path(path)
    existing = _first_existing(path)
    if not existing.is_dir():
        where = "" if existing == path else f": {existing} is a file"
        raise ValueError(f"{option} must be a directory (made if missing), not {str(path)!r}"
                         f"{where}")


def check_output_file(option, path, suffix):
    """ValueError unless ``path`` ends in ``suffix`` and can be written: its folder exists and
    it is not a directory."""
    path = Path(path)
    if path.suffix != suffix:
        raise ValueError(f"{option} must be a {suffix} file name, not {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{option} must be a file, not the directory {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"{option} must be in an existing directory, not {str(path)!r} "
                         f"({str(path.parent)!r} is not one)")


@contextlib.contextmanager
def removed_on_error(path):
    """Remove what the block created of ``path`` (a file, or a folder and its missing parents)
    if it fails with bad input: a refused command leaves nothing behind."""
    path = Path(path)
    created = None if path.exists() else path
    while created is not None and not created.parent.exists():
        created = created.parent
    try:
        yield path
    except BAD_INPUT_ERRORS:
        if created is not None and created.is_dir():
            shutil.rmtree(created, ignore_errors=True)
        elif created is not None:
            created.unlink(missing_ok=True)
        raise
