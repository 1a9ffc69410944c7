"""The package has no import cycle: every module imports on its own, first, in a fresh interpreter.

One interpreter imports the third-party dependencies once, then forks a child per module: each child
starts without any ``monitor`` module loaded, as a fresh interpreter would, at a fraction of the cost.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import monitor

DEPENDENCIES = (
    "alembic",
    "apscheduler",
    "holidays",
    "imapclient",
    "prometheus_client",
    "pydantic",
    "sqlmodel",
    "yaml",
)

RUNNER = """
import importlib, os, sys, traceback

package = sys.argv[1]
for dependency in filter(None, sys.argv[2].split(",")):
    importlib.import_module(dependency)
assert not any(m == package or m.startswith(package + ".") for m in sys.modules)
for module in sys.argv[3:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        print("cannot be imported first:", module)
"""


def _modules(path: list[str], package: str) -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(path, f"{package}.")
        # Alembic's scripts run only inside alembic; __main__ runs the CLI.
        if ".migrations" not in m.name and not m.name.endswith(".__main__")
    )


def _import_each_first(package: str, modules: list[str], dependencies: tuple[str, ...], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, package, ",".join(dependencies), *modules],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=cwd,
    )
    return done.stdout + done.stderr


def test_every_module_of_the_package_imports_first() -> None:
    modules = _modules(monitor.__path__, "monitor")
    assert {"monitor.plugins", "monitor.config", "monitor.sources.imap", "monitor.rules.base"} <= set(modules)
    out = _import_each_first("monitor", modules, DEPENDENCIES, Path(monitor.__path__[0]).parent)
    assert "cannot be imported first" not in out, out


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n")
    out = _import_each_first("cyclic", ["cyclic.a", "cyclic.b"], (), tmp_path)
    assert "cannot be imported first: cyclic.a" in out
    assert "cannot be imported first: cyclic.b" in out
    assert "partially initialized module" in out
