"""Training teachers: objectives (`objectives`), the loop (`loop`), checkpoints."""

from .loop import Trained, train_teacher

__all__ = ["Trained", "train_teacher"]
