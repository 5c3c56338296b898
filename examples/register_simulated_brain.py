"""Register the simulated brain to the Allen CCF (or the phantom, offline) without napari.

Run: ``.venv/bin/python examples/register_simulated_brain.py``
"""

from napari_ccf_align.core import align
from napari_ccf_align.core.register import rigid
from napari_ccf_align.plugin import sample_data

reference, reference_name, sim, name = sample_data.simulated_brain_volumes()
start = align.centre_on_atlas(align.AlignmentState(), sim.volume, reference)
result = rigid.register(reference, sim.volume, start)
print(f"{name} -> {reference_name}")
print(f"truth: {sim.truth.rotation_deg} degrees; found: {result.params.rotation_deg}")
print(f"{len(result.trace)} iterations in {result.seconds:.1f} s: {result.stop_reason}")
