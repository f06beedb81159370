"""A newcomer finds the tests of any module: a test file of its name, or tests/README.md naming where."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_has_a_test_file_of_its_name_or_a_line_in_the_tests_readme() -> None:
    readme = (ROOT / "tests" / "README.md").read_text()
    test_files = {p.name for p in (ROOT / "tests").rglob("test_*.py") if "node_modules" not in p.parts}
    unaccounted = []
    for package in ("amllib", "service"):
        for module in sorted((ROOT / package).rglob("*.py")):
            rel = module.relative_to(ROOT / package).as_posix()
            if module.name == "__init__.py" or f"test_{module.stem}.py" in test_files:
                continue
            if f"`{rel}`" not in readme and f"`{rel.rsplit('/', 1)[0]}/`" not in readme:
                unaccounted.append(f"{package}/{rel}")
    assert not unaccounted, f"no test file of their name and no line in tests/README.md: {unaccounted}"
