"""docs/ops.md lists exactly the ops the registry defines."""

from __future__ import annotations

import pathlib
import re

from tflite_jit import ops


def test_ops_doc_matches_registry() -> None:
    text = (pathlib.Path(__file__).parents[1] / "docs" / "ops.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`ops/" in line]
    listed = {name.strip() for row in rows
              for name in re.sub(r"\(.*?\)", "", row.split("|")[2]).split(",")}
    assert listed == set(ops.all_ops())
