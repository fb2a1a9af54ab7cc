"""The constants that C++ and Python share agree (docs/architecture.md lists them): read from the
headers, compared with the Python names that mirror them (kCamelCase -> CAMEL_CASE)."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

# The modules (openmmnnp.ops.env_tabulate, the attribute, is the function of that name).
env_tabulate_py = importlib.import_module("openmmnnp.ops.env_tabulate")
neighbors_py = importlib.import_module("openmmnnp.ops.neighbors")

PLUGIN = Path(__file__).resolve().parents[2] / "plugin"


def header_constants(header: str) -> dict:
    """Every `constexpr <integer type> kName = <integer>;` of a plugin header, by name."""
    text = (PLUGIN / header).read_text()
    pattern = r"constexpr\s+(?:int|int64_t|int32_t)\s+(k\w+)\s*=\s*(-?\d+)\s*;"
    return {name: int(value) for name, value in re.findall(pattern, text)}


def python_name(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name[1:]).upper()


def test_python_name_rule():
    assert python_name("kStatOutside") == "STAT_OUTSIDE" and python_name("kNonFinitePositions") == "NON_FINITE_POSITIONS"


@pytest.mark.parametrize("header, module, prefix", [
    ("env_tabulate/env_tabulate.h", env_tabulate_py, "kStat"),  # slots of env_tabulate's statistics output
    ("neighbors/neighbors.h", neighbors_py, None),  # neighbor_pairs' device error codes (negative num_pairs)
])
def test_header_constants_equal_their_python_mirrors(header, module, prefix):
    constants = header_constants(header)
    if prefix is not None:
        shared = {name: value for name, value in constants.items() if name.startswith(prefix)}
    else:
        shared = {name: value for name, value in constants.items() if value < 0}
    assert len(shared) >= 4, f"parsed too few constants from {header}: {constants}"
    for name, value in shared.items():
        assert getattr(module, python_name(name), None) == value, f"{header}: {name} = {value}, Python {python_name(name)}"
    # Nothing on the Python side without its C++ constant.
    mirrored = {python_name(name) for name in shared}
    python_prefix = python_name(prefix) + "_" if prefix else None
    python_side = {n for n in vars(module) if n.isupper() and isinstance(getattr(module, n), int) and
                   (n.startswith(python_prefix) if python_prefix else getattr(module, n) < 0)}
    assert python_side == mirrored


def test_statistics_size_and_wrap_limit():
    assert header_constants("env_tabulate/env_tabulate.h")["kNumStats"] == len(
        [n for n in vars(env_tabulate_py) if n.startswith("STAT_")])
    # neighbors.h's kMaxWrap (a double) is the Python MAX_WRAP that the FAR_FROM_BOX error message prints.
    wrap = re.search(r"constexpr double kMaxWrap = ([\d.]+);", (PLUGIN / "neighbors/neighbors.h").read_text())
    assert wrap is not None
    assert neighbors_py.MAX_WRAP == float(wrap.group(1))
    assert "{MAX_WRAP:.0f} box lengths" in inspect.getsource(neighbors_py)
