"""Measuring a trained model: exact likelihoods where the latents can be summed out
(`likelihood`), sample quality against held-out data (`metrics`: the registry `METRICS`,
on raw values or on a feature space from `features`), the teacher-vs-student measures
and their paired comparisons (`evaluate`, `stats`), and the pictures each model writes:
samples, reconstructions, training curves (`pictures`).
"""
