"""Distilling students from a trained teacher: the loop and a student's evaluation
(`distill`), dead-unit revival during it (`revive`), the grid of students in worker
processes (`jobs`), and continual learning by distillation (`continual`).
"""
