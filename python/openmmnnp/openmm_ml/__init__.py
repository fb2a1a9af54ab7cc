"""OpenMM-ML integration: ``MLPotential("openmmnnp", modelPath=...)`` (docs/mlmm.md).

The potential is registered by the ``openmmml.potentials`` entry point in pyproject.toml and
lives in :mod:`openmmnnp.openmm_ml.potential`; model files are found (and DeePMD-kit models
imported and compressed) by :mod:`openmmnnp.openmm_ml.model_source`.
"""
