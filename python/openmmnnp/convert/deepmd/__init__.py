"""Import of DeePMD-kit se_e2_a models (``openmm-nnp convert-deepmd``), without DeePMD-kit."""

from openmmnnp.convert.deepmd.convert import convert_deepmd

__all__ = ["convert_deepmd"]
