"""Argument types of the ``openmm-nnp`` command line: every value is checked when it is parsed.

argparse calls these on each argument before any sub-command runs, so a bad value stops the
command at once with one line (``openmm-nnp compress: error: argument -f/--frequency: ...``,
exit status 2) instead of a traceback after minutes of work. Each raises
``argparse.ArgumentTypeError`` with what was wrong and what is allowed.
"""

from __future__ import annotations

import argparse
import math
import os


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    """An integer > 0."""
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def check_frequency(text: str) -> int:
    """A positive integer, or -1 for "never" (the values NNPForce's check_frequency accepts)."""
    value = int(_number(text, int))
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or -1 (no checks), got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def at_least_one(text: str) -> float:
    """A finite number >= 1 (a factor that may only enlarge)."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 1.0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def input_file(text: str) -> str:
    """A readable file that exists (not a folder)."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text!r} is not readable")
    return text


def output_file(text: str) -> str:
    """A file that can be written: its folder exists and is writable, and it is not a folder itself."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the folder {folder!r} is not writable")
    return text


def same_file(first: str, second: str) -> bool:
    """True when the two paths name one file (also through links), whether or not it exists yet."""
    if os.path.exists(first) and os.path.exists(second):
        return os.path.samefile(first, second)
    return os.path.realpath(first) == os.path.realpath(second)
