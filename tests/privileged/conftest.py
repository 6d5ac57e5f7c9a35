"""Fixtures shared with the network tests."""

from tests.network.conftest import netns  # noqa: F401 - the fixture itself
