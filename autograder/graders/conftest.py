"""Fixtures of the hidden graders: the submission's artifacts, the run's inputs, thresholds, credit."""

import pytest

from autograder.graders.checks import CONTEXT_KEY, CREDIT_KEY, Credit


@pytest.fixture
def context(request):
    return request.config.stash[CONTEXT_KEY]


@pytest.fixture
def artifacts(context):
    return context.artifacts


@pytest.fixture
def inputs(context):
    return context.inputs


@pytest.fixture
def thresholds(context):
    return context.thresholds


@pytest.fixture
def intake(context):
    return context.intake


@pytest.fixture
def credit(request):
    value = Credit()
    request.node.stash[CREDIT_KEY] = value
    return value
