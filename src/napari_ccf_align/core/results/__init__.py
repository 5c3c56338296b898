"""What is done with a result: apply it to other data, measure it (QC), report it.

``apply`` maps images, label images and points either way, ``qc`` holds the quality
measures and maps (Jacobian, grid, NCC, Dice), ``report`` draws the QC sheet and page.
"""
