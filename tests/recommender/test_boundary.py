"""recommender/ is a library: it never imports lbs or flask."""

from __future__ import annotations

import ast
from pathlib import Path

import recommender

FORBIDDEN = {"lbs", "flask", "flask_openapi3", "sqlalchemy"}


def test_recommender_imports_neither_lbs_nor_flask() -> None:
    package = Path(recommender.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [(path.name, n) for n in names if n.split(".")[0] in FORBIDDEN]
    assert len(list(package.rglob("*.py"))) >= 4
    assert found == []
