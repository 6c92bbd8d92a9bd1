"""`mprun` as users run it: exit statuses, output formats, paths, and the real console script."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.main import main
from runner.schema import load_schema
from tests.support import MINIMAL, ROOT, WORKFLOWS, alive, children, start_mprun, user_env, wait_for, write

pytestmark = pytest.mark.timeout(120)


def test_the_shipped_workflows_check_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--strict", str(WORKFLOWS)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "no problems" in err


def test_errors_exit_1_and_warnings_only_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warned = write(tmp_path, "warned.yaml", MINIMAL + "queues: {q: {}}\n")
    assert main(["check", str(warned)]) == 0
    assert main(["check", "--strict", str(warned)]) == 1
    out = capsys.readouterr().out
    assert f"{warned}:4:10: error: queue 'q' is never used" in out
    broken = write(tmp_path, "broken.yaml", "version: 1\nprocesses: {p: {target: os:getpid, replicas: -1}}\n")
    assert main(["check", str(broken), str(warned)]) == 1


def test_every_problem_of_every_file_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "a.yaml", "version: 1\nprocesses: {p: {target: os:getpid}}\nsteps: [{join: p}, {start: x}]\n")
    write(tmp_path, "b.yml", "version: 1\nproceses: {}\n")
    write(tmp_path, "notes.txt", "not a workflow")
    assert main(["check", "--no-import", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{tmp_path}/a.yaml:3:16",
        f"{tmp_path}/a.yaml:3:28",
        f"{tmp_path}/b.yml:1:1",
        f"{tmp_path}/b.yml:2:1",
    ]


def test_globs_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "one.yaml", MINIMAL)
    assert main(["check", str(tmp_path / "*.yaml")]) == 0
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "*.nothing")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--format", "xml", str(tmp_path)])
    assert exit_info.value.code == 2


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "w.yaml", "version: 1\nprocesses: {p: {target: os:getpid, dameon: true}}\n")
    assert main(["check", "--format", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    [problem] = report["files"][0]["problems"]
    assert (problem["line"], problem["column"], problem["path"]) == (2, 36, "processes.p.dameon")
    assert "did you mean 'daemon'?" in problem["message"]


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == load_schema()


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = user_env()
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_real_command_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "version: 1\nprocesses:\n  p: {target: os:getpid\n")
    result = _run("check", str(bad))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{bad}:3:6: error: invalid YAML: the '{{' here is never closed")
    assert "Traceback" not in result.stderr
    result = _run("check", str(tmp_path / "nope.yaml"))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"mprun: error: no such file or folder: '{tmp_path / 'nope.yaml'}'",
    )


def test_github_format_through_the_real_command(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "version: 1\nprocesses: {p: {target: 'os:nothing_here'}}\n")
    result = _run("check", "--format", "github", str(bad))
    assert result.returncode == 1
    assert result.stdout.startswith(f"::error file={bad},line=2,col=25,title=mprun attribute::")


def test_a_bug_on_one_file_is_reported_and_the_others_still_checked(tmp_path: Path) -> None:
    from runner.checker import check_file
    from runner.commands.check import check
    from runner.errors import Bug

    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", "version: 1\nprocesses: {p: {target: os:getpid, replicas: 0}}\n")

    def flaky(path: Path, **options: object) -> object:
        if path.name == "a.yaml":
            raise RuntimeError("boom")
        return check_file(path, **options)  # type: ignore[arg-type]

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Bug, match=r"a\.yaml"):
        check([str(tmp_path)], out=out, err=err, check_one=flaky)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"{tmp_path}/a.yaml:1:1: error: mprun failed while checking this file, a bug to report: RuntimeError: boom "
        "[internal-error]"
    )
    assert lines[1].startswith(f"{tmp_path}/b.yaml:2:46: error: 'replicas' must be at least 1")


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_interrupting_a_check_stops_the_import_probes(tmp_path: Path, signum: int, status: int) -> None:
    write(tmp_path, "slow.py", "import time\ntime.sleep(120)\n")
    workflows = [write(tmp_path, f"w{i}.yaml", "version: 1\nprocesses: {p: {target: slow:f}}\n") for i in range(2)]
    mprun = start_mprun("check", "--import-timeout", "60", *map(str, workflows))
    try:
        deadline = time.monotonic() + 20
        while len(children(mprun.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        probes = children(mprun.pid)
        assert len(probes) == 2, "both files' probes should be importing by now"
        mprun.send_signal(signum)
        assert mprun.wait(timeout=10) == status
        assert "Traceback" not in mprun.communicate()[1]
        # After SIGKILL nothing of mprun's ran: the probes notice their parent is gone.
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in probes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in probes if alive(pid)], "a probe outlived mprun"
    finally:
        mprun.kill()
        mprun.wait()


def test_globs_take_workflows_from_matched_folders_and_skip_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "jobs.py", "def f(): pass\n")
    write(tmp_path, ".pre-commit-config.yaml", "repos: []\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "b.yml", MINIMAL)
    assert main(["check", "--no-import", str(tmp_path / "*")]) == 0
    assert capsys.readouterr().err == "2 files checked: no problems\n"
    assert main(["check", "--no-import", str(tmp_path)]) == 0
    assert capsys.readouterr().err == "2 files checked: no problems\n"


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "method,signum,second,step",
    [
        ("fork", signal.SIGINT, None, 0.005),
        ("fork", signal.SIGINT, 0.003, 0.005),
        ("spawn", signal.SIGINT, 0.003, 0.015),
        ("spawn", signal.SIGTERM, None, 0.015),
    ],
    ids=["ctrl-c", "ctrl-c-twice-within-3-ms", "spawn-ctrl-c-twice", "spawn-sigterm"],
)
def test_a_signal_at_any_moment_is_its_exit_status_without_a_traceback(
    tmp_path: Path, method: str, signum: int, second: float | None, step: float
) -> None:
    # Swept over the whole run: imports, the check, the manager's start, the starts, the end.
    write(tmp_path, "jobs.py", "def fill(d, key):\n    d[key] = key\n")
    body = f"start_method: {method}\npythonpath: [.]\ndicts: {{d: {{}}}}\n"
    body += "processes: {p: {target: jobs:fill, args: [$d, 3], replicas: 2}}\n"
    path = write(tmp_path, "w.yaml", "version: 1\n" + body)
    status_for = {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    seen = []
    for number in range(20):
        log_file = tmp_path / f"run{number}.jsonl"
        mprun = subprocess.Popen(
            [sys.executable, "-m", "runner", str(path), "--log-file", str(log_file)],
            cwd=tmp_path,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(number * step)
        mprun.send_signal(signum)
        if second is not None:
            time.sleep(second)
            mprun.send_signal(signum)
        _, err = mprun.communicate(timeout=30)
        seen.append((number * step, mprun.returncode, err, log_file))
    for at, status, err, log_file in seen:
        if "Traceback" in err:  # only while Python itself starts (its exit status is its own)
            assert "/runner/" not in err, (at, err)
        else:
            assert status in (status_for, 0, -signum), (at, status, err)  # 0: it had ended already
        if status in (status_for, 0):
            lines = log_file.read_text().splitlines() if log_file.exists() else []
            assert not lines or json.loads(lines[-1])["event"] == "run.end", (at, lines[-3:])
    assert sum(status == status_for for _, status, _, _ in seen) >= 10, seen


@pytest.mark.timeout(90)
def test_a_time_limit_that_ends_while_the_manager_starts_is_kept(tmp_path: Path) -> None:
    write(tmp_path, "jobs.py", "def fill(d, key):\n    d[key] = key\n")
    body = "start_method: spawn\npythonpath: [.]\ndicts: {d: {}}\nlists: {l: {}}\n"
    body += "processes: {p: {target: jobs:fill, args: [$d, 3]}}\n"
    path = write(tmp_path, "w.yaml", "version: 1\n" + body)
    for limit in (0.001, 0.01, 0.03, 0.06, 0.1):
        result = subprocess.run(
            [sys.executable, "-m", "runner", str(path), "--log-file", "run.jsonl", "--timeout", str(limit)],
            cwd=tmp_path,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        end = json.loads((tmp_path / "run.jsonl").read_text().splitlines()[-1])
        assert end["event"] == "run.end" and "Traceback" not in result.stderr, result.stderr
        took = end["duration_s"]
        if took > limit + 0.05:  # it cannot have ended before the limit: the limit was kept
            assert result.returncode == 1 and f"--timeout {limit:g} s" in end["failures"][0], (limit, end)


def test_check_tells_a_module_that_can_never_be_imported_from_one_that_hides_mprun_s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "w.yaml", "version: 1\npythonpath: [.]\nprocesses: {p: {target: jobs:f}}\n")
    for name in ("jobs", "runner", "logging", "yaml", "heapq"):
        write(tmp_path, f"{name}.py", "def f(): pass\n")
    assert main(["check", "--no-import", str(tmp_path / "w.yaml")]) == 1
    found = {line.split("'")[1]: line for line in capsys.readouterr().out.splitlines()}
    assert set(found) == {"runner", "logging", "yaml", "heapq"}, found
    for name in ("runner", "logging"):  # imported by mprun before any workflow code, in every process
        assert ": error: " in found[name] and "can never be imported" in found[name]
    assert ": warning: " in found["yaml"] and "hides the installed 'yaml' module only in spawn" in found["yaml"]
    assert ": warning: " in found["heapq"] and "the standard library's 'heapq'" in found["heapq"]


@pytest.mark.timeout(60)
def test_a_log_file_that_is_the_workflow_a_link_or_in_use_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "jobs.py", "import time\ndef nap(seconds):\n    time.sleep(seconds)\n")
    slow = write(tmp_path, "slow.yaml", "version: 1\nprocesses: {p: {target: jobs:nap, args: [3]}}\n")
    quick = write(tmp_path, "quick.yaml", "version: 1\nprocesses: {p: {target: jobs:nap, args: [0]}}\n")
    (tmp_path / "link.jsonl").symlink_to(write(tmp_path, "real.jsonl", "kept\n"))

    def mprun(workflow: Path, log_file: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "runner", str(workflow), "--log-file", log_file]
        return subprocess.run(command, cwd=tmp_path, env=user_env(), capture_output=True, text=True, timeout=30)

    for log_file, why in [("quick.yaml", "it is the workflow file itself"), ("link.jsonl", "symbolic link to")]:
        result = mprun(quick, log_file)
        assert result.returncode == 2 and why in result.stderr, result.stderr
    assert (tmp_path / "real.jsonl").read_text() == "kept\n" and "version: 1" in quick.read_text()

    first = start_mprun(str(slow), "--log-file", str(tmp_path / "run.jsonl"), console=False)
    try:
        log = tmp_path / "run.jsonl"
        assert wait_for(lambda: log.exists() and "process.start" in log.read_text(), 20)
        second = mprun(quick, "run.jsonl")
        assert second.returncode == 2 and "another mprun run is writing it now" in second.stderr
        assert first.wait(timeout=30) == 0
    finally:
        first.kill()
        first.wait()
    records = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "run.start" and records[-1]["event"] == "run.end"  # the first run's, whole
    assert {record["run_id"] for record in records} == {records[0]["run_id"]}
    assert mprun(quick, "run.jsonl").returncode == 0  # once it has ended: a new log in its place
    assert json.loads((tmp_path / "run.jsonl").read_text().splitlines()[0])["path"].endswith("quick.yaml")
    # A device is written as it is.
    assert mprun(quick, "/dev/stdout").stdout.count('"event": "run.end"') == 1


def test_mprun_start_method_sets_the_default_start_method(tmp_path: Path) -> None:
    write(tmp_path, "jobs.py", "def f(): pass\n")
    path = write(tmp_path, "w.yaml", "version: 1\nprocesses: {p: {target: jobs:f}}\n")
    named = write(tmp_path, "named.yaml", "version: 1\nstart_method: fork\nprocesses: {p: {target: jobs:f}}\n")

    def run(workflow: Path, value: str) -> tuple[int, str, str]:
        env = {**user_env(), "MPRUN_START_METHOD": value}
        command = [sys.executable, "-m", "runner", str(workflow), "--log-file", "run.jsonl"]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        first = (tmp_path / "run.jsonl").read_text().splitlines()[0] if result.returncode != 2 else "{}"
        return result.returncode, json.loads(first).get("start_method"), result.stderr

    assert run(path, "forkserver")[:2] == (0, "forkserver")
    assert run(named, "spawn")[:2] == (0, "fork")  # the workflow's own choice comes first
    status, _, err = run(path, "thread")
    assert status == 2 and "MPRUN_START_METHOD='thread' is not a start method here" in err


@pytest.mark.timeout(30)
def test_a_fifo_or_a_device_is_a_located_error_never_a_blocked_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # nobody writes: an open() or read() would block for ever
    (tmp_path / "folder").mkdir()
    write(tmp_path / "folder", "a.yaml", MINIMAL)
    os.mkfifo(tmp_path / "folder" / "b.yaml")
    runs = [["check", "pipe.yaml"], ["check", "folder"], ["check", "/dev/zero"], ["run", "pipe.yaml"]]
    for command in runs:
        result = subprocess.run(
            [sys.executable, "-m", "runner", *command],
            cwd=tmp_path,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == (2 if command[0] == "run" else 1), (command, result)
        assert "Traceback" not in result.stderr
        said = result.stdout + result.stderr
        assert ":1:1: error: is a " in said
        assert "not a regular file (give '-' to read a workflow from standard input) [file]" in said


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "1e308", "soon"])
def test_import_timeout_must_be_a_sensible_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--import-timeout", value, "workflows"])
    assert exit_info.value.code == 2
    assert "--import-timeout" in capsys.readouterr().err


def test_standard_input_is_checked_as_a_file_in_the_current_folder(tmp_path: Path) -> None:
    write(tmp_path, "jobs.py", "def work(n): pass\n")
    env = user_env()
    text = "version: 1\nprocesses:\n  p: {target: jobs:work, args: [1, 2]}\n"
    result = subprocess.run(
        [sys.executable, "-m", "runner", "check", "-"],
        input=text,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("<stdin>:3:32: error: 'jobs:work(n)' cannot be called with 2 positional")


def test_non_utf8_standard_input_is_a_located_problem() -> None:
    env = user_env()
    result = subprocess.run(
        [sys.executable, "-m", "runner", "check", "-"],
        input=b"version: 1\nname: \xff\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stdout.decode() == "<stdin>:2:7: error: the file is not UTF-8: byte 0xff cannot be decoded [encoding]\n"
    )


def test_closed_standard_input_is_a_usage_error() -> None:
    env = user_env()
    result = subprocess.run(
        [sys.executable, "-m", "runner", "check", "-"],
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        close_fds=True,
        preexec_fn=lambda: os.close(0),
    )
    assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    env = user_env()
    read, write_end = os.pipe()
    os.close(read)
    result = subprocess.run(
        [sys.executable, "-m", "runner", "schema", "--format", "markdown"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
        timeout=60,
    )
    os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


def test_schema_markdown_through_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.reference import markdown

    assert main(["schema", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == markdown()
