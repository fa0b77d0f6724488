"""Hidden graders: plain pytest tests over one submission's artifacts, one rubric item each.

Never released to students and never visible inside a sandbox. Each test is marked
``@pytest.mark.rubric("<id>")`` (points and visible name live in ``rubric.toml``); its docstring's first
line is the question shown in the feedback. A test fails with `Mismatch` (what was expected, what was
received, how to fix it) or lets `ProbeFailed` through; partial credit goes through the ``credit`` fixture.
"""
