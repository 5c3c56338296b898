"""Runs on disk and without a screen: the session folder, the headless recipe, batches.

``session`` is a run's schema and its atomic folder, ``headless`` one whole run from a
recipe (what the CLI and batch call), ``batch`` a recipe over many brains on dask.
"""
