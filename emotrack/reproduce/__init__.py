"""Reproduction of the papers' tables: repeats of an experiment over seeds, summarised."""
