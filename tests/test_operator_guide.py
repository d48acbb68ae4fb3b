"""The operator's guide (docs/exploitation.md) is the one place where variables and commands are listed: every
variable the settings read and every management command of the project appears there, and the README (for
developers) lists neither again."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "exploitation.md").read_text()
README = (ROOT / "README.md").read_text()

# Read by the settings for the test suite and the embedded default only, never set by an operator.
NOT_FOR_OPERATORS = {"CELERY_TASK_ALWAYS_EAGER", "CELERY_TASK_DEFAULT_QUEUE"}
ENV_READERS = {"env_str", "env_required", "env_bool", "env_int", "env_float", "env_list"}


def _variables() -> set[str]:
    names = set()
    for path in (ROOT / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ENV_READERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names - NOT_FOR_OPERATORS


def _commands() -> set[str]:
    return {
        path.stem
        for path in ROOT.glob("*/management/commands/*.py")
        if not path.stem.startswith("_") and ".venv" not in path.parts
    }


def test_the_settings_read_variables_and_the_project_has_commands():
    assert {"DATABASE_URL", "SECRET_KEY", "SCAN_ROOT"} <= _variables()
    assert {"seed_demo", "pull_referential", "rotate_encryption_key"} <= _commands()


def test_every_variable_is_in_the_guide():
    missing = sorted(name for name in _variables() if f"`{name}`" not in GUIDE)
    assert missing == []


def test_every_command_is_in_the_guide_once_and_not_in_the_readme():
    for command in sorted(_commands()):
        rows = re.findall(rf"^\| `{command}\b", GUIDE, flags=re.MULTILINE)
        assert len(rows) == 1, command
        assert f"manage.py {command}" not in README, command
