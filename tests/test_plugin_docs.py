"""Every module of lookout's collection documents itself in YAML that parses: DOCUMENTATION, EXAMPLES when
present, and RETURN are mappings (ansible-doc and ansible-lint read them; a plain scalar with ': ' in it
breaks them)."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "plugins" / "modules").glob("*.py"))


def _docs(path: Path) -> dict[str, str]:
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                    found[target.id] = node.value.value
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_the_module_documentation_parses(module: Path):
    docs = _docs(module)
    assert {"DOCUMENTATION", "RETURN"} <= set(docs), f"{module.name}: DOCUMENTATION and RETURN"
    for name, text in docs.items():
        parsed = yaml.safe_load(text) if name != "EXAMPLES" else yaml.safe_load(text) or []
        assert isinstance(parsed, dict if name != "EXAMPLES" else (list, dict)), f"{module.name}: {name}"
    assert yaml.safe_load(docs["DOCUMENTATION"])["module"] == module.stem
