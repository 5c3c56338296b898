"""What napari sees: the reader, the sample data, layer data, the widget model and widgets.

Only this package (and the CLI's GUI demo) imports napari or Qt; it calls the core for
every number it shows.
"""
