"""``trustme`` is in the ``testing`` extra, not a runtime dependency: without it the test gateway
says in one line how to install it; the package ships ``py.typed``."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# trustme made unimportable: a None entry in sys.modules makes `import trustme` raise ImportError
_NO_TRUSTME = ("import sys; sys.modules['trustme'] = None; from hdi.testing.gateway import main; "
               "raise SystemExit(main(['--state-dir', sys.argv[1]]))")


def test_the_gateway_without_trustme_says_how_to_install_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _NO_TRUSTME, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == ("error: the test gateway needs trustme, which is not installed: "
                          "pip install 'hdi[testing]'\n")
    assert not (tmp_path / "gateway.json").exists()


def test_trustme_is_in_the_testing_extra_not_the_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("trustme") for d in project["dependencies"])
    assert project["optional-dependencies"]["testing"] == ["trustme==1.2.1"]
    assert ".[dev,testing]" in (ROOT / "Makefile").read_text()


def test_the_package_ships_py_typed():
    # building a wheel needs a setuptools newer than the venv's (PEP 639 license): checked by hand
    # with `pip wheel --no-deps .`, which lists hdi/py.typed; here, what makes setuptools ship it
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["hdi"] and (ROOT / "hdi" / "py.typed").is_file()
