"""Volumes with known ground truth: a procedural brain and a simulated brain."""
