"""Importers of models trained with other codes into openmm-nnp models."""
