"""Training teachers: objectives (`objectives`), the loop (`loop`), checkpoints."""

from .loop import TrainResult, train_teacher

__all__ = ["TrainResult", "train_teacher"]
