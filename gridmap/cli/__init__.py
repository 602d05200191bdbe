"""The ``gridmap`` command line: one module per group of commands.

Heavy modules are imported inside the commands, so ``gridmap --help`` is fast.
Every gridmap error is shown as one clear line and exit code 1; usage errors
exit with 2.

Modules: :mod:`~gridmap.cli.app` (the Typer app, shared options, errors),
:mod:`~gridmap.cli.inputs` (reading layers), :mod:`~gridmap.cli.partition`,
:mod:`~gridmap.cli.staffing`, :mod:`~gridmap.cli.run`, :mod:`~gridmap.cli.service`,
:mod:`~gridmap.cli.locate`, :mod:`~gridmap.cli.store` and :mod:`~gridmap.cli.cases`.
"""

from __future__ import annotations

import gc
import logging

# the command modules register their commands on `app` when imported, in this order
# isort: off
from gridmap.cli import partition  # noqa: F401  synth, validate, partition, map
from gridmap.cli import staffing  # noqa: F401  assign
from gridmap.cli import run  # noqa: F401  run
from gridmap.cli import service  # noqa: F401  serve, keys
from gridmap.cli import locate  # noqa: F401  locate
from gridmap.cli import store  # noqa: F401  db, import, plans, diff, publish, export
from gridmap.cli import cases  # noqa: F401  cases, calendar
from gridmap.cli import audit  # noqa: F401  audit
from gridmap.cli import visits  # noqa: F401  visits

# isort: on
from gridmap.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``gridmap`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()  # exits with SystemExit
    finally:
        # The process ends here. Its last garbage collections would walk every object of
        # pandas, SQLAlchemy and the rest (~0.2 s after ``gridmap locate``); frozen, they
        # are skipped. Exit handlers still run, and the OS takes back the memory.
        gc.freeze()
