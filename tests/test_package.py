"""The package as it is installed and imported: which modules load, what a wheel holds, the README's set-up."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import chainrule

PACKAGE = Path(chainrule.__file__).resolve().parent
REPO = Path(__file__).resolve().parent.parent


def python(code: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# --- (a) what importing loads ---------------------------------------------------------------


def test_importing_chainrule_does_not_load_the_command_line() -> None:
    out = python(
        "import sys, json, chainrule, chainrule.render, chainrule.render.diagram, chainrule.render.json_document\n"
        "d = chainrule.derive(chainrule.default_network())\n"
        "d._repr_html_()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'chainrule')))\n"
    ).stdout
    loaded = json.loads(out)
    assert "chainrule.render" in loaded and "chainrule.numeric" in loaded  # the probe really imported things
    assert "chainrule.cli" not in loaded and "chainrule.__main__" not in loaded


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports anywhere in its code, except under ``if TYPE_CHECKING:``."""
    path = _module_file(name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            for alias in node.names:  # "from . import printing" imports a submodule
                if _module_file(f"{module}.{alias.name}") is not None and module.startswith("chainrule"):
                    found.add(f"{module}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def closure(start: str) -> dict[str, set[str]]:
    """The chainrule modules ``start`` reaches through its own imports, each with what it imports.

    The top-level ``chainrule/__init__.py`` re-exports the public API (numeric included)
    and is not followed: "by themselves" means a module's own imports.
    """
    seen: dict[str, set[str]] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name == "chainrule":
            continue
        seen[name] = imports_of(name)
        todo.extend(m for m in seen[name] if m.startswith("chainrule.") and _module_file(m) is not None)
    return seen


RENDER_MODULES = sorted(
    "chainrule.render" + ("" if p.name == "__init__.py" else "." + p.stem) for p in (PACKAGE / "render").glob("*.py")
)


def test_the_import_reader_sees_numpy_where_it_is() -> None:
    reached = closure("chainrule.numeric")
    assert any(m == "numpy" or m.startswith("numpy.") for m in reached["chainrule.numeric"])
    assert "chainrule.derive" in reached


@pytest.mark.parametrize("module", RENDER_MODULES)
def test_render_modules_do_not_import_numpy(module: str) -> None:
    assert {"chainrule.render", "chainrule.render.printing", "chainrule.render.steps"} <= set(RENDER_MODULES)
    reached = closure(module)
    offenders = {
        name: sorted(m for m in imported if m == "numpy" or m.startswith("numpy.") or m == "chainrule.numeric")
        for name, imported in reached.items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_render_loads_without_numpy_when_the_package_init_is_skipped() -> None:
    """The same, at run time: with numpy blocked, every render module still imports."""
    code = f"""
import importlib.abc, importlib.util, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy is blocked by the test")
sys.meta_path.insert(0, Block())
spec = importlib.util.find_spec("chainrule")
package = importlib.util.module_from_spec(spec)  # not executed: skip the public API's re-exports
package.__version__ = "0+test"
sys.modules["chainrule"] = package
for name in {RENDER_MODULES!r}:
    importlib.import_module(name)
assert "numpy" not in sys.modules and "chainrule.numeric" not in sys.modules, sorted(sys.modules)
print("ok")
"""
    assert python(code).stdout.strip() == "ok"


# --- (b) templates come from the installed wheel ----------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repository (the working tree stays as it is)."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("hatchling, the build backend, is not installed: install the test extra, pip install -e '.[test]'")
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    ignore = shutil.ignore_patterns(".git", "output", "__pycache__", "*.egg-info", ".pytest_cache", "dist", "build")
    shutil.copytree(REPO, source, ignore=ignore)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(folder / "dist"), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheels = list((folder / "dist").glob("chainrule-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_every_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*") if p.is_file())
    assert templates, "no templates in the repository"
    assert [t for t in templates if f"chainrule/templates/{t}" not in names] == []
    assert "chainrule/render/environment.py" in names and "chainrule/cli.py" in names
    assert not any(n.startswith(("tests/", "output/", "src/")) for n in names)


def test_an_installed_wheel_renders_with_its_own_templates(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    code = """
import json, chainrule
from chainrule.render import render
from chainrule.render.environment import template_dir
d = chainrule.derive(chainrule.default_network())
ex = chainrule.worked_example(d)
docs = {fmt: render(d, fmt, ex) for fmt in ("html", "tex", "md", "json")}
print(json.dumps({"file": chainrule.__file__, "templates": str(template_dir()),
                  "math": docs["html"].count("<math"), "doctype": docs["html"].startswith("<!DOCTYPE html>"),
                  "tex": docs["tex"].count("\\\\begin{document}"), "loss": json.loads(docs["json"])["loss"]}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    found = json.loads(python(code, cwd=tmp_path, env=env).stdout)
    resolved = site.resolve()
    assert Path(found["file"]).resolve().is_relative_to(resolved), found["file"]
    assert Path(found["templates"]).resolve().is_relative_to(resolved), found["templates"]
    assert Path(found["templates"]).resolve() == resolved / "chainrule" / "templates"
    assert found["doctype"] and found["math"] > 100 and found["tex"] == 1
    assert found["loss"] == pytest.approx(0.298371109, rel=1e-8)


# --- (c) the README's set-up -------------------------------------------------------------------


def _setup_commands() -> list[tuple[str, str]]:
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"
    text = readme.read_text(encoding="utf-8")
    heading = re.search(r"^##+ Set-up\s*$", text, re.MULTILINE)
    assert heading, "README.md has no 'Set-up' heading"
    rest = text[heading.end() :]
    following = re.search(r"^#{1,%d} " % (heading.group(0).count("#")), rest, re.MULTILINE)
    section = rest[: following.start()] if following else rest
    return [(lang, body.strip()) for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", section, re.MULTILINE | re.DOTALL)]


def _ci_command() -> str:
    run = REPO / ".ci" / "run"
    assert run.is_file(), ".ci/run is missing"
    assert os.access(run, os.X_OK), ".ci/run is not executable"
    lines = [line.strip() for line in run.read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#") and not re.match(r"(set|cd)\b", line)]
    assert len(commands) == 1, commands
    return commands[0]


def test_readme_has_exactly_two_set_up_commands() -> None:
    blocks = _setup_commands()
    assert len(blocks) == 2, blocks
    for lang, body in blocks:
        assert lang in ("sh", "bash", "shell", "console"), lang
        assert len(body.splitlines()) == 1, body


def test_the_second_set_up_command_is_what_ci_runs() -> None:
    assert _setup_commands()[1][1] == _ci_command()


def test_the_set_up_commands_name_what_exists() -> None:
    first, second = (body for _, body in _setup_commands())
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The first installs the package and runs its command, which pyproject declares.
    assert "pip install" in first and re.search(r"\bchainrule derive\b", first)
    assert project["scripts"]["chainrule"] == "chainrule.cli:main"
    # The second installs the test extra and runs pytest.
    extra = re.search(r'\.\[(\w+)\]', second)
    assert extra and extra.group(1) in project["optional-dependencies"], second
    assert any(dep.startswith("pytest") for dep in project["optional-dependencies"][extra.group(1)])
    assert re.search(r"\bpytest\b", second.split("&&")[-1])
    # CI=true makes the browser and pdflatex tests fail without these, so the command installs them.
    assert re.search(r"\bchromium\b", second) and re.search(r"\btexlive-latex-base\b", second), second
