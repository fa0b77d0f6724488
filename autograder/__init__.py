"""Autograder for the "Hello world of deep learning" assignment (MNIST with Keras).

Stages, in the order data flows: ``submissions`` (intake) -> ``sandbox`` running ``harness`` (untrusted)
-> ``artifacts`` -> ``scoring`` with the hidden ``graders`` -> ``report`` -> ``gradebook``; ``grade``
drives them, ``cli`` is the command line. ``release`` builds the student version, ``reference`` the
reference scores, ``gradescope`` the Gradescope bundle.
"""

__version__ = "1.0.0"
