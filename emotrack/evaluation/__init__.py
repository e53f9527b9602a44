"""Evaluation: metrics, the post-processing chain, reports and plots of a run, and runs beside the papers' numbers."""
