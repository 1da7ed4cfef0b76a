"""Shared entry point of the absl apps in bin/: bad input is one clear line and exit code 2."""

from __future__ import annotations

import logging as py_logging
import sys
from collections.abc import Callable

from absl import app, flags, logging

EXIT_BAD_INPUT = 2


def run_main(main: Callable) -> None:
    def guarded(argv):
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # --verbosity=0 for INFO logs
            py_logging.getLogger("tensorflow").setLevel(py_logging.WARNING)
        try:
            return main(argv)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            # DataUnavailableError, RunDirError, IDXFormatError and config checks end up here.
            prog = sys.argv[0].rsplit("/", 1)[-1]
            print(f"{prog}: error: {e}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    app.run(guarded, flags_parser=parse_flags)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parsing, but a bad flag (a typo, a bad value) exits 2 like every other bad input."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        prog = argv[0].rsplit("/", 1)[-1]
        print(f"{prog}: error: {e}\nPass --helpfull to see the flags.", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
