"""Shared fixtures. ``venue`` runs each scenario against both the kernel and the model."""
import pytest

from .venue import Venue


@pytest.fixture(params=["kernel", "model"])
def venue(request) -> Venue:
    return Venue(request.param)


@pytest.fixture(params=["kernel", "model"])
def engine_name(request) -> str:
    return request.param
