"""Fixtures of the infra checks (tests/infra): nothing here touches the network or AWS."""

from __future__ import annotations

import pytest

from tests.infra.terraform_config import TERRAFORM_DIR, Configuration


@pytest.fixture(scope="session")
def tf() -> Configuration:
    """Every .tf file under infra/terraform, parsed once per session."""
    return Configuration(TERRAFORM_DIR)
