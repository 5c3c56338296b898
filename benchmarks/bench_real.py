"""Accuracy on real anatomy of other brains: DeMBA P14/P28/P56 and the Perens MRI template
registered to the Allen CCF, at 200 µm (and at 100 µm with ``--100``).

Real population templates of other ages and another modality (``../shared/data/
templates_200um``, BrainGlobe orientation ``asr`` = nibabel ``PIL``), not phantoms made from the
Allen template. For each brain and setting, alternating, in one process: mean Dice of the 14
major regions (the brain's own Allen-id annotation warped to the atlas by nearest neighbour,
against the atlas annotation; each region = the voxels of its descendants), NCC over the atlas's
brain with both images clipped at their 99.5th percentile (the only figure for the Perens MRI
template, which has no annotation), the smallest Jacobian determinant over the brain (<= 0 is
folding), and the time.

``--pairing`` times our default recipe against ANTsPy's ``SyN``, and ours with SyN's
independent halves one at a time (:mod:`~napari_ccf_align.core.register.syn_pairs`) and on
DIPY's own kernels (:mod:`~napari_ccf_align.core.register.syn_kernels`), alternating, twice
per brain at 100 µm.

Run: ``.venv/bin/python -m benchmarks.bench_real [--100] [--intensity | --speed | --sweep |
--pairing]`` (with ANTsPy's recipes as peers when
``antspyx`` is installed: ``pip install -e .[benchmarks]``)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks import ants_peer
from benchmarks.common import SHARED, write
from napari_ccf_align.core import align
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.register import pipeline, rigid, syn
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.volume import Volume

TEMPLATES = SHARED / "templates_200um"
BRAINS = ("demba_P14_mouse", "demba_P28_mouse", "demba_P56_mouse", "perens_stereotaxic_mri_mouse")

#: (label, method, SyN settings overrides): our defaults, DIPY's CC defaults, and the
#: per-level convergence stop (DIPY fits the energy over its last ``energy_window``
#: iterations; with its window of 12, a level of 10 iterations can only stop at its cap).
SETTINGS = (
    ("rigid", "rigid", {}),
    ("similarity", "similarity", {}),
    ("affine", "affine", {}),
    ("affine+syn, ours (r2, σ4, 40/20/10)", "affine+syn", {}),
    ("rigid+affine+syn, ours", "rigid+affine+syn", {}),
    ("affine+syn, DIPY CC (r4, σ2, 40/20/10)", "affine+syn", {"radius": 4, "sigma_diff": 2.0}),
    (
        "rigid+affine+syn, caps 100/50/25, window 12",
        "rigid+affine+syn",
        {"level_iters": (100, 50, 25)},
    ),
    (
        "rigid+affine+syn, caps 100/50/25, window 6",
        "rigid+affine+syn",
        {"level_iters": (100, 50, 25), "energy_window": 6},
    ),
)
#: Intensity preparation (``--intensity``): the full recipe with N4 bias correction of the
#: sample, and with its histogram matched to the atlas's (both stages).
INTENSITY = (
    ("rigid+affine+syn, ours", "rigid+affine+syn", {}),
    ("rigid+affine+syn + N4", "rigid+affine+syn", {"bias_correction": True}),
    ("rigid+affine+syn + histogram match", "rigid+affine+syn", {"match_histogram": True}),
    ("rigid+affine+syn + clip at 99.9 %", "rigid+affine+syn", {"clip_percentiles": (0.5, 99.9)}),
)
#: SyN's speed (``--speed``): the field inversion's iterations and the finest level's cap
#: (DIPY spends ~37 % of a run inverting the fields, ~20 % smoothing, the finest level ~8x a
#: coarser one per iteration).
SPEED = (
    ("rigid+affine+syn, caps 40/20/10", "rigid+affine+syn", {"level_iters": (40, 20, 10)}),
    ("inversion 10 iterations", "rigid+affine+syn", {"level_iters": (40, 20, 10), "inv_iter": 10}),
    (
        "inversion tolerance 1e-2",
        "rigid+affine+syn",
        {"level_iters": (40, 20, 10), "inv_tol": 1e-2},
    ),
    ("caps 40/20/5 (the default)", "rigid+affine+syn", {}),
    ("caps 40/20/0", "rigid+affine+syn", {"level_iters": (40, 20, 0)}),
)
#: SyN's caps and CC settings around the default (``--sweep``, 100 µm): where the time goes
#: (the finest level) against what each brain's Dice does.
SWEEP = (
    ("caps 40/20/5 (the default)", "rigid+affine+syn", {}),
    ("caps 40/20/3", "rigid+affine+syn", {"level_iters": (40, 20, 3)}),
    ("caps 40/30/3", "rigid+affine+syn", {"level_iters": (40, 30, 3)}),
    ("caps 40/40/2", "rigid+affine+syn", {"level_iters": (40, 40, 2)}),
    ("radius 3, sigma 3", "rigid+affine+syn", {"radius": 3, "sigma_diff": 3.0}),
    ("radius 3, sigma 4", "rigid+affine+syn", {"radius": 3, "sigma_diff": 4.0}),
    ("radius 4, sigma 3", "rigid+affine+syn", {"radius": 4, "sigma_diff": 3.0}),
    ("radius 2, sigma 3", "rigid+affine+syn", {"radius": 2, "sigma_diff": 3.0}),
    ("linear stages 50 iterations", "rigid+affine+syn", {"iterations": 50}),
    ("linear stages 200 iterations", "rigid+affine+syn", {"iterations": 200}),
    ("inversion tolerance 1e-2", "rigid+affine+syn", {"inv_tol": 1e-2}),
)
#: ANTsPy's own recipes (an optional peer: ``pip install antspyx``).
ANTS = ("Rigid", "Affine", "SyN", "SyNRA")


def _npz(name: str) -> tuple[Volume, Volume | None]:
    d = np.load(TEMPLATES / f"{name}_200um.npz")
    ref = Volume.from_array(d["reference"], 0.2, "asr", "brainglobe", name=name)
    labels = d["annotation"] if "annotation" in d.files else None
    ann = None if labels is None else ref.with_data(labels, name=f"{name} annotation")
    return ref.reoriented("RAS"), None if ann is None else ann.reoriented("RAS")


def _fixed(resolution_um: int):
    if resolution_um == 200:
        template, annotation = _npz("allen_mouse")
    else:
        template = atlas.read_allen_nrrd(SHARED / "average_template_100.nrrd", 100)
        annotation = atlas.read_allen_nrrd(SHARED / "annotation_100.nrrd", 100)
    structures = atlas.StructureTable.from_file(SHARED / "allen_structure_graph.json")
    return template, annotation, structures


def _one(fixed, annotation, structures, brain, brain_labels, method, overrides, res_um):
    state = align.centre_on_atlas(align.AlignmentState(), brain, fixed)
    own = {k: v for k, v in overrides.items() if k in syn.SynSettings.__dataclass_fields__}
    syn_settings = syn.SynSettings(working_resolution_um=float(res_um), **own)
    shared = {k: v for k, v in overrides.items() if k in rigid.RigidSettings.__dataclass_fields__}
    t0, c0 = time.perf_counter(), time.process_time()
    result = pipeline.run(
        fixed, brain, method, state, rigid.RigidSettings(**shared), syn_settings, isolate_syn=False
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    brain_mask = qc.brain_mask(fixed, annotation)
    warped = result.warp(fixed, brain)
    row = {
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),  # all threads' CPU time: less swayed by a busy host
        "ncc_clipped": round(qc.clipped_ncc(fixed.data, warped.data, brain_mask), 4),
    }
    if brain_labels is not None:
        on_atlas = result.warp(fixed, brain_labels, labels=True)
        dice = qc.major_region_dice(on_atlas.data, annotation.data, structures)
        row["mean_dice"] = round(dice["mean"], 4)
    jac, _ = qc.jacobian_of(result, fixed)
    row["min_jacobian"] = round(float(np.min(jac[brain_mask])), 3)
    if result.linear_stage is not None and result.linear_stage.method == "similarity":
        row["scale"] = round(float(np.cbrt(abs(np.linalg.det(result.matrix[:3, :3])))), 4)
    if result.deformable:  # iterations each level ran, and whether it stopped at its cap
        used = [sum(1 for t in result.trace if t.stage == "syn" and t.level == k) for k in
                range(len(syn_settings.level_iters))]  # fmt: skip
        row["iterations"] = used
        row["capped"] = [u >= cap for u, cap in zip(used, syn_settings.level_iters, strict=True)]
    return row


def _ants(fixed, annotation, structures, brain, brain_labels, kind):
    warped, labels, seconds, cpu = ants_peer.register(fixed, brain, kind, brain_labels)
    brain_mask = qc.brain_mask(fixed, annotation)
    row = {
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "ncc_clipped": round(qc.clipped_ncc(fixed.data, warped.data, brain_mask), 4),
    }
    if labels is not None:
        row["mean_dice"] = round(
            qc.major_region_dice(labels.data, annotation.data, structures)["mean"], 4
        )
    return row


def main(resolutions=(200,), settings=SETTINGS, peers=True, out_name="real") -> None:
    if not (TEMPLATES / "allen_mouse_200um.npz").is_file():
        print(f"{TEMPLATES} is missing: nothing to measure.")
        return
    rows = {}
    for res in resolutions:
        fixed, annotation, structures = _fixed(res)
        for name in BRAINS:
            brain, labels = _npz(name)
            for label, method, overrides in settings:
                key = f"{res} µm | {name} | {label}"
                rows[key] = _one(
                    fixed, annotation, structures, brain, labels, method, overrides, res
                )
                print(key, rows[key], flush=True)
            if peers and ants_peer.available():
                for kind in ANTS:
                    key = f"{res} µm | {name} | ANTsPy {kind}"
                    rows[key] = _ants(fixed, annotation, structures, brain, labels, kind)
                    print(key, rows[key], flush=True)
    print("written to", write(out_name, {"rows": rows}))


def pairing(repeats: int = 2) -> None:
    """Our default recipe against ANTsPy SyN (100 µm, alternating), and ours with SyN's
    halves one at a time and on DIPY's own kernels, to show what each gains."""
    from contextlib import nullcontext

    from napari_ccf_align.core.register import syn_kernels, syn_pairs

    kinds = (
        ("default", nullcontext),
        ("SyN halves one at a time", syn_pairs.one_at_a_time),
        ("DIPY's own kernels", syn_kernels.dipys_own),
    )
    fixed, annotation, structures = _fixed(100)
    rows = {}
    for name in BRAINS:
        brain, labels = _npz(name)
        _one(fixed, annotation, structures, brain, labels, "rigid+affine+syn", {}, 100)  # warm
        for rep in range(repeats):
            for label, how in kinds:
                key = f"{name} | ours, {label} | #{rep}"
                with how():
                    rows[key] = _one(
                        fixed, annotation, structures, brain, labels, "rigid+affine+syn", {}, 100
                    )
                print(key, rows[key], flush=True)
            if ants_peer.available():
                key = f"{name} | ANTsPy SyN | #{rep}"
                rows[key] = _ants(fixed, annotation, structures, brain, labels, "SyN")
                print(key, rows[key], flush=True)
    print("written to", write("real_syn_pairing", {"rows": rows}))


if __name__ == "__main__":
    resolutions = (200, 100) if "--100" in sys.argv else (200,)
    if "--pairing" in sys.argv:
        pairing()
    elif "--sweep" in sys.argv:
        main((100,), SWEEP, peers=False, out_name="real_syn_sweep")
    elif "--speed" in sys.argv:
        main(resolutions, SPEED, peers=True, out_name="real_syn_speed")
    elif "--intensity" in sys.argv:
        main(resolutions, INTENSITY, peers=False, out_name="real_intensity")
    else:
        main(resolutions)
