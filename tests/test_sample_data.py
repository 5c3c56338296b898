"""Sample data: the simulated brain carries its truth, and says so when made from the phantom."""

from __future__ import annotations

import numpy as np

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import NetworkError
from napari_ccf_align.plugin import sample_data
from napari_ccf_align.plugin.layer_data import VOLUME_KEY


def test_offline_simulated_brain_comes_from_the_phantom_and_says_so(monkeypatch):
    def offline(*args, **kwargs):
        raise NetworkError("Could not download the atlas (test): no network.")

    monkeypatch.setattr(sample_data.atlas, "load_atlas", offline)
    (ref_data, ref_kwargs, _), (data, kwargs, kind) = sample_data.simulated_brain()
    assert ref_kwargs["name"] == "brain phantom"
    assert "from phantom: atlas unavailable" in kwargs["name"] and kind == "image"
    truth = frames.RigidParams.from_dict(kwargs["metadata"][VOLUME_KEY].metadata["truth"])
    rotation = np.linalg.norm(truth.rotation_deg)
    assert 15 < rotation < 25  # "about 20 degrees"
    assert data.shape == ref_data.shape
