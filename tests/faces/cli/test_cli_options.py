"""The group's options (--url, --backend, --config, --table, --namespace): taken before or after
any subcommand, refused when they conflict or would be dropped, and backend URLs that cannot be
used (bad host or port, a Redis database that is not a number, a driver not installed) are one
line naming the fix, never a driver's traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import GLOBAL_OPTIONS, main
from qadmin.job import NewJob
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[3]
#: what each subcommand needs besides the global options to get as far as opening the backend
REQUIRED = {
    "enqueue": ["X"],
    "show": ["1"],
    "retry": ["1"],
    "delete": ["1", "--yes"],
    "dequeue": ["--queue", "q", "--class", "X"],
    "unlock": ["--stale"],
    "pause": ["q"],
    "resume": ["q"],
    "worker": ["--burst"],
    "edit": ["1", "--args", "[]"],
    "complete": ["1"],
    "fail": ["1", "--error", "x"],
}


def invoke(*args: str, env: dict[str, Any] | None = None) -> Result:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None, **(env or {})})
    return runner.invoke(main, list(args), catch_exceptions=False)


def one_line(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output[-1500:])
    err = result.stderr.strip()
    assert "Traceback" not in result.output and len(err.splitlines()) == 1, err[-1500:]
    assert err.startswith("qadmin: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_subcommand_takes_the_global_options_after_its_name(command: str, tmp_path: Path) -> None:
    # an unknown scheme given after the command is what the command opens: the option was applied
    one_line(invoke(command, *REQUIRED.get(command, []), "--url", "nosuch://x"), 2, "unknown URL scheme")
    config = tmp_path / "qadmin.toml"
    config.write_text('[backends.b]\nurl = "nosuch://from-config"\n')
    one_line(
        invoke(command, *REQUIRED.get(command, []), "--config", str(config), "--backend", "b"), 2, "unknown URL scheme"
    )


def test_every_group_option_is_also_a_subcommand_option() -> None:
    group = {opt for p in main.params for opt in p.opts if opt.startswith("--") and opt != "--version"}
    group -= {"--help"}
    assert group == {flag for flag, *_ in GLOBAL_OPTIONS}
    for name, command in main.commands.items():
        assert group <= {opt for p in command.params for opt in p.opts}, name


def test_before_and_after_are_the_same_and_conflicts_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    backend = open_backend(sqlite_url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="here"))
    backend.close()
    after = invoke("queues", "--json", "--url", sqlite_url)
    before = invoke("--url", sqlite_url, "queues", "--json")
    assert after.exit_code == before.exit_code == 0
    assert after.stdout == before.stdout and "here" in after.stdout
    assert invoke("--url", sqlite_url, "queues", "--url", sqlite_url).exit_code == 0  # the same twice
    one_line(invoke("--url", sqlite_url, "queues", "--url", "sqlite:///other.db"), 2, "--url", "twice")
    # the command line overrides the environment, wherever it is given
    env_url = {"QADMIN_URL": "nosuch://from-env"}
    assert invoke("queues", "--url", sqlite_url, env=env_url).exit_code == 0
    assert invoke("--url", sqlite_url, "queues", env=env_url).exit_code == 0


def test_options_that_would_be_dropped_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    open_backend(sqlite_url).init()
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[backends.b]\nurl = "{sqlite_url}"\n')
    cases = [
        (["--url", sqlite_url, "--backend", "nosuch", "jobs"], "no backend named 'nosuch'"),
        (["--url", sqlite_url, "jobs", "--backend", "nosuch"], "no backend named 'nosuch'"),
        (["--config", str(config), "--url", sqlite_url, "--backend", "b", "jobs"], "--url or --backend"),
        (["--url", sqlite_url, "--table", "", "jobs"], "--table must not be empty"),
        (["--url", "", "jobs"], "--url must not be empty"),
        (["--url", sqlite_url, "--namespace", "ns", "jobs"], "--namespace"),
        (["--url", "redis://127.0.0.1:1/0", "--table", "jobs", "jobs"], "--table"),
        (["jobs", "--url", "redis://127.0.0.1:1/0", "--table", "jobs"], "--table"),
    ]
    for args, needle in cases:
        one_line(invoke(*args), 2, needle)
    # a backend named in the environment gives way to --url on the command line, but must exist
    result = invoke("--config", str(config), "--url", sqlite_url, "jobs", env={"QADMIN_BACKEND": "b"})
    assert result.exit_code == 0, result.output
    one_line(invoke("--url", sqlite_url, "jobs", env={"QADMIN_BACKEND": "nosuch"}), 2, "nosuch")


BAD_URLS = [
    ("redis://[::1", "Invalid IPv6"),
    ("redis://127.0.0.1:6379/abc", "not a number"),
    ("redis://127.0.0.1:6379/-1", "not a number"),
    ("redis://127.0.0.1:notaport/0", "bad"),
    ("postgresql://u:secret@127.0.0.1:abc/db", "bad URL"),
    ("postgresql://[::1/db", "Invalid IPv6"),
    ("postgresql+nosuch://h/db", "unknown SQL driver"),
    # MySQL/MariaDB are not supported (no server of theirs is tested): refused like any unknown scheme
    ("mysql+pymysql://u@127.0.0.1/db", "unknown URL scheme"),
]


@pytest.mark.parametrize("url, needle", BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_a_url_that_cannot_be_used_is_one_line(url: str, needle: str) -> None:
    pytest.importorskip("sqlalchemy")
    for command in (["jobs"], ["enqueue", "X"], ["stats"]):
        err = one_line(invoke("--url", url, *command), 2, needle)
        assert "secret" not in err


def test_enqueue_to_a_redis_that_is_down_is_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for command in (["enqueue", "X"], ["jobs"], ["pause", "q"]):
        one_line(invoke("--url", url, *command), 1, "cannot reach")


@pytest.mark.parametrize(
    "url, module, extra",
    [
        ("postgresql://u@127.0.0.1:1/db", "psycopg", "postgres"),
        ("redis://127.0.0.1:1/0", "redis", "redis"),
    ],
)
def test_a_missing_driver_is_one_line_with_the_install_command(
    tmp_path: Path, url: str, module: str, extra: str
) -> None:
    """A real process in which the driver cannot be imported (a module of that name that fails as
    a missing one does, first on the path)."""
    blocked = tmp_path / "blocked"
    for name in {module, "psycopg2" if module == "psycopg" else module}:
        (blocked / name).mkdir(parents=True, exist_ok=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n"
        )
    env = {"PYTHONPATH": f"{blocked}:{ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "jobs"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr[-2000:]
    assert f"pip install 'qadmin[{extra}]'" in res.stderr, res.stderr


def test_the_postgresql_and_redis_drivers_are_core_dependencies_and_the_extras_still_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    for package in ("psycopg[binary]", "redis", "hiredis"):
        assert package in core
    extras = project["optional-dependencies"]
    assert {"redis", "postgres", "granian", "all"} <= set(extras)
    readme = (ROOT / "README.md").read_text()
    for extra in extras:
        assert f"qadmin[{extra}]" in readme, extra


def test_worker_pool_options_that_do_not_go_together_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    """`--pool async` is one process claiming for its free slots: --fork and --prefetch would be
    dropped there, so they are refused; a pool named nowhere is refused, from the flag or the file."""
    open_backend(sqlite_url).init()
    one_line(invoke("--url", sqlite_url, "worker", "--burst", "--pool", "async", "--fork"), 2, "--fork", "--pool async")
    one_line(invoke("--url", sqlite_url, "worker", "--burst", "--pool", "async", "--prefetch", "5"), 2, "--prefetch")
    one_line(invoke("--url", sqlite_url, "worker", "--burst", "--pool", "threads"), 2, "--pool")
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[backends.b]\nurl = "{sqlite_url}"\n\n[worker]\npool = "threads"\n')
    one_line(invoke("--config", str(config), "worker", "--burst"), 2, "[worker] pool")
    # the file's pool is the default; the flag wins over it
    config.write_text(f'[backends.b]\nurl = "{sqlite_url}"\n\n[worker]\npool = "async"\n')
    one_line(invoke("--config", str(config), "worker", "--burst", "--fork"), 2, "--fork", "--pool async")
    assert invoke("--config", str(config), "worker", "--burst", "--fork", "--pool", "process").exit_code == 0
    assert invoke("--config", str(config), "worker", "--burst", "-c", "3").exit_code == 0
