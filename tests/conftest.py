"""Shared fixtures live in tests/fixtures/*; each area registers its plugin module here."""

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.d365_sim",
    "tests.fixtures.pipedrive_sim",
    "tests.fixtures.platform",
    "tests.fixtures.stack",
]
