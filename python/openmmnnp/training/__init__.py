"""Training potentials on reference frames: energy + force loss, schedules, checkpoints."""

from openmmnnp.training.trainer import TrainConfig, train

__all__ = ["TrainConfig", "train"]
