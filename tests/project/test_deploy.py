"""What operators deploy with — Dockerfile, compose.yaml, the systemd units — exercised as far as
this machine allows: the units through `systemd-analyze verify`, each compose service's command as
a real process against the tests' own PostgreSQL and Redis, and the Dockerfile's install in a
fresh virtual environment (a real `docker build` only where `docker info` answers).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from qadmin.job import NewJob
from tests.servers import HOST, free_port, wait_for_port
from tests.worker.test_worker_processes import client, count, lines

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/qadmin/bin/qadmin"
STRONG = "x7Kq-2mVp9Lr_4tZw8Yb"  # 20 characters, many different: accepted off loopback


# --- systemd ------------------------------------------------------------------------------------
def unit(name: str) -> dict[str, str]:
    """A unit file's last value of each key (enough for these units: no key is repeated)."""
    out: dict[str, str] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def seconds(text: str) -> float:
    """systemd's and qadmin's durations as both units spell them here (`11min`, `10m`, `30s`)."""
    m = re.fullmatch(r"(\d+)(s|m|min|h)", text)
    assert m, text
    return int(m.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def test_the_worker_unit_stops_gracefully_restarts_and_is_hardened() -> None:
    worker = unit("qadmin-worker@.service")
    command = shlex.split(worker["ExecStart"])
    assert command[:2] == [INSTALLED, "worker"]
    assert command[command.index("--queue") + 1] == "%i"  # one unit per queue
    max_run_time = seconds(command[command.index("--max-run-time") + 1])
    assert worker["KillSignal"] == "SIGTERM"
    assert worker["KillMode"] == "mixed"  # the supervisor passes the SIGTERM to its processes
    assert seconds(worker["TimeoutStopSec"]) > max_run_time
    assert worker["Restart"] == "on-failure"
    for name in ("qadmin-worker@.service", "qadmin-web.service"):
        hardened = unit(name)
        assert hardened["User"] == "qadmin" and hardened["Group"] == "qadmin", name
        assert hardened["NoNewPrivileges"] == "yes", name
        assert hardened["ProtectSystem"] == "strict", name
        assert hardened["PrivateTmp"] == "yes", name
    web = shlex.split(unit("qadmin-web.service")["ExecStart"])
    assert web[:2] == [INSTALLED, "web"] and web[web.index("--host") + 1] == "127.0.0.1"


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("NOT TESTED: systemd-analyze is not installed (Debian package systemd)")
    qadmin = shutil.which("qadmin") or str(Path(sys.executable).parent / "qadmin")
    assert os.access(qadmin, os.X_OK), "the qadmin console script is not installed"
    for source in UNITS.glob("*.service"):
        (tmp_path / source.name).write_text(source.read_text().replace(INSTALLED, qadmin))
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "qadmin-worker@mail.service"), str(tmp_path / "qadmin-web.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # unknown keys and bad values are only warnings: none may be there
    assert "Unknown key" not in done.stderr and "Failed to parse" not in done.stderr, done.stderr


# --- compose ------------------------------------------------------------------------------------
def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, nested ones too."""
    pattern = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^${}]*))?\}")
    while True:
        m = pattern.search(text)
        if m is None:
            return text
        name, how, rest = m.groups()
        value = env.get(name, "")
        if not value and how == ":-":
            value = rest
        elif not value and how == ":?":
            raise KeyError(f"{name}: {rest}")
        text = text[: m.start()] + value + text[m.end() :]


def compose() -> dict:
    with open(ROOT / "compose.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def service(name: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The service's command and environment, interpolated as `docker compose` would."""
    spec = compose()["services"][name]
    command = [interpolate(str(arg), env) for arg in spec["command"]]
    environment = {key: interpolate(str(value), env) for key, value in spec.get("environment", {}).items()}
    return command, environment


def test_compose_declares_what_an_operator_needs() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "init", "worker", "scheduler", "web"} <= set(services)
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name
    assert services["postgres"]["volumes"] and services["redis"]["volumes"]
    # secrets come from the environment, never from the file
    assert "${POSTGRES_PASSWORD:?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "${QADMIN_WEB_PASSWORD:?" in services["web"]["environment"]["QADMIN_WEB_PASSWORD"]
    # the console listens on every address in its container, published on loopback only
    web = services["web"]["command"]
    assert web[web.index("--host") + 1] == "0.0.0.0"
    assert all(str(port).startswith("127.0.0.1:") for port in services["web"]["ports"])
    # workers scale: no fixed container name, no published port
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    worker = services["worker"]["command"]
    graceful = seconds(services["worker"]["stop_grace_period"])
    assert graceful > seconds(worker[worker.index("--max-run-time") + 1])
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        service("worker", {})


class Started:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as fh:
            # the image's entry point is the `qadmin` console script: `python -m qadmin` is the same
            # command, from this checkout
            proc = subprocess.Popen(
                [sys.executable, "-m", "qadmin", *command],
                cwd=self.tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        return next(log.read_text(errors="replace") for p, log in self.procs if p is proc)

    def wait_for_log(self, proc: subprocess.Popen, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(proc):
            assert proc.poll() is None, self.log(proc)
            assert time.monotonic() < deadline, f"no {text!r} in the log within {timeout}s:\n{self.log(proc)}"
            time.sleep(0.1)

    def stop(self, proc: subprocess.Popen, timeout: float = 30) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Started]:
    s = Started(tmp_path)
    yield s
    s.close()


@pytest.fixture(
    params=[pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)]
)
def store_url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def test_compose_services_run_against_the_tests_servers(store_url: str, tmp_path: Path, started: Started) -> None:
    """init, worker, scheduler and web as compose starts them (their commands and environment
    from compose.yaml), on the tests' PostgreSQL or Redis in place of the compose services."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QADMIN_")}
    given = {**base, "POSTGRES_PASSWORD": "unused", "QADMIN_WEB_PASSWORD": STRONG, "QADMIN_URL": store_url}

    def env_of(name: str) -> tuple[list[str], dict[str, str]]:
        command, environment = service(name, given)
        assert environment["QADMIN_URL"] == store_url  # QADMIN_URL wins over the bundled PostgreSQL
        return command, {**base, **environment}

    command, env = env_of("init")
    init = subprocess.run(
        [sys.executable, "-m", "qadmin", *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert init.returncode == 0, init.stderr

    out = tmp_path / "ran.txt"
    with client(store_url) as c:
        c.enqueue_many(NewJob("qadmin.examples.record", [str(out), f"job-{i}"]) for i in range(50))
    command, env = env_of("worker")
    worker = started.start("worker", command, env)
    deadline = time.monotonic() + 60
    while len(lines(out)) < 50 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.1)
    assert sorted(lines(out)) == sorted(f"job-{i}" for i in range(50)), started.log(worker)
    assert started.stop(worker) == 0, started.log(worker)
    assert count(store_url, "pending", "locked", "failed") == 0

    command, env = env_of("scheduler")
    scheduler = started.start("scheduler", command, env)
    started.wait_for_log(scheduler, "started")
    assert started.stop(scheduler) == 0, started.log(scheduler)
    assert "stopped" in started.log(scheduler)

    command, env = env_of("web")
    # on this machine the console listens on loopback only, on a free port: inside its container
    # it takes every address (0.0.0.0), which its password allows
    port = free_port()
    command[command.index("--host") + 1] = HOST
    command[command.index("--port") + 1] = str(port)
    web = started.start("web", command, env)
    wait_for_port(port, timeout=30)
    with urllib.request.urlopen(f"http://{HOST}:{port}/login", timeout=10) as page:
        assert page.status == 200
        assert b"password" in page.read().lower()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{HOST}:{port}/api/jobs", timeout=10)
    assert refused.value.code in (302, 401)
    request = urllib.request.Request(f"http://{HOST}:{port}/api/stats", headers={"Authorization": f"Bearer {STRONG}"})
    with urllib.request.urlopen(request, timeout=10) as stats:
        assert json.loads(stats.read())["processed"] == 50
    # SIGTERM ends the web server (waitress has nothing to finish that a browser would not retry)
    assert started.stop(web) in (0, -signal.SIGTERM), started.log(web)


# --- Dockerfile ---------------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def context_files() -> list[Path]:
    """What `docker build .` sends, as .dockerignore's lines select it (`*` then `!` exceptions)."""
    rules = [r.strip() for r in (ROOT / ".dockerignore").read_text().splitlines() if r.strip() and r[0] != "#"]
    assert rules[0] == "*", "the build context is an allow-list"
    kept = [r[1:].rstrip("/") for r in rules[1:] if r.startswith("!")]
    return [ROOT / k for k in kept]


def test_the_dockerfile_is_coherent() -> None:
    steps = dockerfile()
    froms = [args for word, args in steps if word == "FROM"]
    assert all(f.split()[0] == "python:3.11-slim" for f in froms), froms
    final = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    last_stage = steps[final:]
    sent = context_files()
    for word, args in steps:
        if word == "COPY" and "--from=" not in args:
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert any(ROOT / source == k or k in (ROOT / source).parents for k in sent), (
                    f"COPY {source}: left out of the build context by .dockerignore"
                )
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entry,) = [json.loads(args) for word, args in last_stage if word == "ENTRYPOINT"]
    assert entry == ["qadmin"] and "qadmin" in scripts
    users = [args for word, args in last_stage if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as a dedicated user"
    assert any(word == "HEALTHCHECK" for word, _ in last_stage)
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install ." in runs
    # nothing of the build stage but the installed environment reaches the image
    assert [args for word, args in last_stage if word == "COPY"] == ["--from=build /opt/qadmin /opt/qadmin"]
    assert not any(re.search(r"apt-get install|gcc|build-essential", args) for _w, args in last_stage)


@pytest.mark.slow
def test_the_dockerfiles_pip_install_gives_a_working_qadmin(tmp_path: Path, redis_url: str) -> None:
    """The image's install step, done here: the build context's files copied as the Dockerfile
    copies them, `pip install .` into a fresh virtual environment, and its `qadmin` run. The
    dependencies come from this interpreter's site-packages (no download in a test); qadmin
    itself — its code and package data — from the copied files only."""
    src = tmp_path / "src"
    src.mkdir()
    for word, args in dockerfile():
        if word == "COPY" and "--from=" not in args:
            *sources, dest = args.split()
            for source in sources:
                target = src / (source if dest in ("./", ".") else dest.lstrip("./"))
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
                    )
                else:
                    shutil.copy2(ROOT / source, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QADMIN_URL", "QADMIN_CONFIG")}
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-deps", "--disable-pip-version-check", "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    qadmin = venv / "bin" / "qadmin"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import qadmin; print(qadmin.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    for args in (["--url", db, "init"], ["--url", db, "queues", "--json"], ["--url", redis_url, "stats", "--json"]):
        done = subprocess.run([str(qadmin), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{args}: {done.stderr}"


def test_docker_build(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("NOT TESTED: no docker client here (the Dockerfile's coherence is tested above)")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip(f"NOT TESTED: `docker info` fails here ({(info.stderr or info.stdout).strip().splitlines()[-1]})")
    tag = f"qadmin-test:{os.getpid()}"
    try:
        built = subprocess.run([docker, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr[-3000:]
        ran = subprocess.run([docker, "run", "--rm", tag, "--help"], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and "worker" in ran.stdout, ran.stderr
        user = subprocess.run(
            [docker, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=120
        )
        assert user.stdout.strip() != "0"
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True, timeout=120)
