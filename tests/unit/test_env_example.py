"""Every configuration variable is documented for operators."""

from __future__ import annotations

import re

from common.config import config_names
from tests.support import ROOT


def test_env_example_lists_every_variable() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert sorted(set(config_names()) - documented) == []


def test_readme_table_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in config_names() if f"`{n}`" not in readme]
    assert missing == []
