"""Start-up noise of third-party imports that would otherwise open every openmm-nnp run.

- openmm-torch 1.10 imports the deprecated ``simtk.openmm`` shim, which logs "Warning: importing
  'simtk.openmm' is deprecated" on the root logger (we use ``openmm`` throughout);
- pymbar, imported by openmmtools, logs a "JAX NOT FOUND" banner and a long statistical-inefficiency
  caveat about its timeseries module (which openmm-nnp does not use) as warnings.

Each is dropped only during the one import that emits it, by a filter on the emitting logger;
every other record, and the same loggers afterwards, are untouched.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip("*\n ").startswith(self.prefix)


@contextlib.contextmanager
def dropping(*records: tuple[str, str]) -> Iterator[None]:
    """Drops, for each (logger name, prefix) ("" names the root logger), that logger's records whose
    message starts with the prefix."""
    filters = [(logging.getLogger(name), _DropPrefix(prefix)) for name, prefix in records]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


def quiet_openmmtorch() -> contextlib.AbstractContextManager:
    return dropping(("", "Warning: importing 'simtk.openmm' is deprecated"))


def quiet_openmmtools() -> contextlib.AbstractContextManager:
    return dropping(("pymbar.mbar_solvers", "JAX NOT FOUND"), ("pymbar.timeseries", "Warning on use of the timeseries module"))
