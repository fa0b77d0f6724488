"""Builders of real-layout LMS downloads and CSV files, written from each LMS's own naming rules.

Each builder follows the LMS's source or documentation (cited in its module) independently of the parser in
``autograder/lms``, so a test that reads a built download checks the parser against the rule, not against
itself. Everything is written into a pytest ``tmp_path``; no binary fixture is committed.
"""
