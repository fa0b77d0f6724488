"""Makes attack folders importable as ``attacks.<name>`` so that pytest, recursing into tests/, imports a
hostile ``conftest.py`` shipped by an attack under a unique name instead of shadowing tests/conftest.py."""
