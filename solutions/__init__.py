"""Instructor sources, one folder per assignment version (solutions/<version>/); a package so that each
version's hidden graders import as solutions.<version>.grading."""
