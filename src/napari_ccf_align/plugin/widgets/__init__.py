"""Qt + magicgui dock widgets. They wire controls to core calls and hold no numerics."""
