"""Training tests use ``tiny_base`` from the root conftest."""
