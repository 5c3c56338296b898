"""Registration: the engines and what they return.

``result`` is the one protocol every result answers (maps both ways, warps, Jacobian,
files); ``prepare`` the inputs every engine registers; ``rigid`` the SimpleITK linear
engine, ``syn`` the DIPY SyN engine, ``pipeline`` a method as the user names it, and
``child`` an engine in its own process.
"""
