"""Jupyter integration of cs3sync: the contents manager, checkpoints, locks and REST handlers."""
