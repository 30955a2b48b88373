"""Shared fixtures live in `tests/fixtures/`, one module per real part they start."""

pytest_plugins = [
    "tests.fixtures.indexes",
    "tests.fixtures.postgres",
    "tests.fixtures.scripted_model",
    "tests.fixtures.vllm_server",
]
