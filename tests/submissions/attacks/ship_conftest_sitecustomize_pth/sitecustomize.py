"""ATTACK PAYLOAD: would make numpy agree with everything if Python imported it at start-up."""
try:
    import numpy
    numpy.allclose = lambda *args, **kwargs: True
    with open("/tmp/autograder_attack_marker_sitecustomize", "w") as handle:
        handle.write("sitecustomize ran\n")
except Exception:
    pass
