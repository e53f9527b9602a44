"""Inference shared by evaluate, predict and export: whole sessions -> clips -> the model -> one prediction per frame."""
