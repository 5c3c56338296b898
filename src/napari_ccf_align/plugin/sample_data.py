"""npe2 sample data: the Allen template and a simulated brain with known truth."""

from __future__ import annotations

import logging

from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.plugin.layer_data import image_layer_data, template_layer_data

log = logging.getLogger(__name__)


def _template(resolution_um: int) -> list[tuple]:
    a = atlas.load_atlas(resolution_um, annotation=False, structures=False)
    return [template_layer_data(a.template, resolution_um)]


def template_100() -> list[tuple]:
    """The Allen CCF v3 average template at 100 µm (downloaded once, then cached)."""
    return _template(100)


def template_25() -> list[tuple]:
    """The Allen CCF v3 average template at 25 µm (downloaded once, then cached)."""
    return _template(25)


def simulated_brain_volumes():
    """The reference (atlas or phantom) and the simulated brain made from it.

    Without the atlas (no network and nothing cached) the simulated brain is made
    from the procedural phantom, and its name says so.
    """
    try:
        reference = atlas.load_atlas(100, annotation=False, structures=False).template
        name, ref_name = "simulated brain", "Allen CCF template (100 µm)"
    except CcfAlignError as exc:
        log.warning("Allen atlas unavailable (%s); simulating from the procedural phantom.", exc)
        reference = phantom.brain_phantom(100)
        name, ref_name = "simulated brain (from phantom: atlas unavailable)", "brain phantom"
    sim = phantom.simulate_brain(reference)
    return reference, ref_name, sim, name


def simulated_brain() -> list[tuple]:
    """The 100 µm template seen through a known ~20 degree rotation, warp, noise and a cut.

    Returns the reference and the simulated brain; the truth is in the brain
    layer's metadata (``metadata["ccf_align_volume"].metadata["truth"]``).
    """
    reference, ref_name, sim, name = simulated_brain_volumes()
    return [
        image_layer_data(reference, name=ref_name, colormap="gray", blending="additive"),
        image_layer_data(sim.volume, name=name, colormap="magenta", blending="additive"),
    ]
