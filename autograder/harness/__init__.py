"""Code that runs INSIDE the sandbox, next to student code. Nothing here is trusted.

This folder is bind-mounted read-only into every sandbox (and nothing else of the autograder is):
``main.py`` supervises the probes, ``probes.py`` calls the student's functions and records plain data,
``export.py`` turns Keras models into plain data, ``protocol.py`` frames what goes back to the grader.
Only the Python standard library, numpy and keras may be imported here; never the rest of ``autograder``.
"""
