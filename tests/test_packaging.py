"""A plain `pip install .` into a fresh virtual environment gives a working `mprun`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.support import ROOT, WORKFLOWS

pytestmark = pytest.mark.timeout(600)


@pytest.mark.skipif(
    bool(os.environ.get("MPRUN_START_METHOD")),
    reason="the wheel is built once, in the suite's pass without MPRUN_START_METHOD (CI's others only repeat it)",
)
def test_the_wheel_carries_the_schema_and_checks_the_shipped_workflows(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONUNBUFFERED")}
    source = tmp_path / "source"  # a copy, so the install cannot see this checkout's editable state
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist"
        ),
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)], check=True, env=env, cwd=tmp_path, timeout=540
    )
    shutil.rmtree(source)  # nothing may be left pointing at the source tree

    where = subprocess.run(
        [str(python), "-c", "import runner.schema as s; print(s.__file__); print(s.schema_path())"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    ).stdout.split()
    assert all(path.startswith(str(environment)) for path in where), where

    mprun = environment / "bin" / "mprun"
    printed = subprocess.run([str(mprun), "schema"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert printed.returncode == 0
    assert json.loads(printed.stdout)["title"] == "mprun workflow"

    workflows = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, workflows)
    checked = subprocess.run(
        [str(mprun), "check", str(workflows)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert (checked.returncode, checked.stdout) == (0, ""), checked.stderr


def test_nothing_runs_through_a_shell() -> None:
    import ast

    for path in (ROOT / "runner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                assert called not in ("os.system", "os.popen", "subprocess.getoutput"), f"{path}: {called}"
                shell = [k for k in node.keywords if k.arg == "shell"]
                assert not shell or ast.unparse(shell[0].value) == "False", f"{path}:{node.lineno} shell="
