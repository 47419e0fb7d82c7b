"""`Settings`: which backend is current and what the config file says, resolved once.

Every face receives one `Settings` (the CLI resolves it from its options, the TUI and the web app
are handed it) instead of working out the backend again. Precedence, for each value: the command
line, then the environment (`QADMIN_URL`, `QADMIN_BACKEND`; `QADMIN_CONFIG` names the file), then
`qadmin.toml` (its default backend), then `sqlite:///qadmin.db`.

Reading and validating the file is `qadmin.config`'s job; this module decides between the sources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from qadmin.config import DEFAULT_NAMESPACE, DEFAULT_URL, BackendConfig, Config, load_config
from qadmin.errors import ConfigError, UsageError
from qadmin.text import holds_lone_surrogate, visible

#: the environment variable that stands for --url
URL_ENV = "QADMIN_URL"
#: the environment variable that stands for --backend
BACKEND_ENV = "QADMIN_BACKEND"
#: how a worker runs jobs at once (`--pool`, `[worker] pool`): N processes, or N async jobs on one event loop
POOLS = ("process", "async")


@dataclass(frozen=True)
class Settings:
    """The backend in use and the config file it was chosen from."""

    url: str = DEFAULT_URL
    #: the SQL jobs table; None lets the backend find it (delayed_jobs, or DJJob's jobs)
    table: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    #: the config file's name for the backend in use; None for a URL given as such
    backend_name: str | None = None
    #: the config file as read (an empty one when there is none)
    config: Config = field(default_factory=Config, repr=False)

    @property
    def backends(self) -> Mapping[str, BackendConfig]:
        """The config file's named backends, which the consoles offer to switch to."""
        return self.config.backends

    def for_backend(self, name: str) -> Settings:
        """The same settings with the named backend of the config file current."""
        entry = self.config.backend(name)
        return replace(self, url=entry.url, table=entry.table, namespace=entry.namespace, backend_name=entry.name)

    def worker_imports(self, given: Sequence[str] = ()) -> tuple[str, ...]:
        """The modules a worker runs jobs from: `given` (--import), then `[worker] imports`.
        Checked here rather than when the file is read, so that a bad `[worker]` table stops
        only `qadmin worker`."""
        listed = self.config.worker.get("imports", [])
        if not isinstance(listed, list) or not all(isinstance(m, str) and m for m in listed):
            raise ConfigError(f"{self.config.path}: [worker] imports must be a list of module names")
        return tuple(dict.fromkeys([*given, *listed]))

    def worker_pool(self, given: str | None = None) -> str:
        """How a worker runs jobs at once (`POOLS`): `given` (--pool), else `[worker] pool`, else
        "process". Checked here, as `worker_imports` is."""
        pool = given if given is not None else self.config.worker.get("pool", "process")
        if pool not in POOLS:
            raise ConfigError(f"{self.config.path}: [worker] pool must be one of: {', '.join(POOLS)}")
        return str(pool)


def resolve(
    *,
    url: str | None = None,
    backend: str | None = None,
    config_file: str | None = None,
    table: str | None = None,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the command line's values (None where an option was not given), the
    environment (`os.environ` unless `environ`) and the config file.

    A named backend is looked up even beside a URL, so that a misspelt name is never dropped
    silently. A URL and a backend name from the same source are refused; from different ones,
    the command line's wins."""
    env = os.environ if environ is None else environ
    env_url, env_backend = env.get(URL_ENV) or None, env.get(BACKEND_ENV) or None
    url_from_env = url is None and env_url is not None
    backend_from_env = backend is None and env_backend is not None
    url = env_url if url is None else url
    backend = env_backend if backend is None else backend
    for flag, value in (("--url", url), ("--backend", backend), ("--table", table), ("--namespace", namespace)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} must not be empty")
        if value is not None and holds_lone_surrogate(value):  # from the environment (arguments are checked)
            raise UsageError(f"{flag} ({visible(value)}) is not valid UTF-8")
    config = load_config(config_file)
    entry = config.backend(backend) if backend else None
    use_url = bool(url)
    if url and entry is not None:
        if url_from_env == backend_from_env:
            raise UsageError("give --url or --backend, not both")
        use_url = not url_from_env
    chosen_table, chosen_namespace, name = table, namespace, None
    if url and use_url:
        current = url
    elif entry is not None or config.default:
        entry = entry or config.backend(None)
        current, name = entry.url, entry.name
        chosen_table = chosen_table or entry.table
        chosen_namespace = chosen_namespace or entry.namespace
    else:
        current = DEFAULT_URL
    redis = current.split("://", 1)[0].lower().split("+", 1)[0] in ("redis", "rediss")
    if redis and chosen_table is not None:
        raise UsageError("--table names a SQL table; a Redis backend takes --namespace")
    if not redis and namespace is not None:
        raise UsageError("--namespace names Redis keys; a SQL backend takes --table")
    return Settings(
        url=current,
        table=chosen_table,
        namespace=chosen_namespace or DEFAULT_NAMESPACE,
        backend_name=name,
        config=config,
    )
