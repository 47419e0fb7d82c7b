"""Every error qadmin raises on purpose. The class docstring is the default message."""

from __future__ import annotations


class QadminError(Exception):
    """qadmin failed."""

    #: exit status the CLI maps this error to (1: an operation failed, 2: bad usage or input)
    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__class__.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(QadminError):
    """The configuration is not usable."""

    exit_code = 2


class UsageError(QadminError):
    """The request is not valid."""

    exit_code = 2


class BackendUnavailable(QadminError):
    """The backend cannot be reached."""


class ReadOnlyBackend(QadminError):
    """The backend can be read but not written (a read-only file, a standby): waiting will not
    change that, so a worker stops on it."""


class MissingTable(QadminError):
    """The jobs table does not exist."""


class JobNotFound(QadminError):
    """No such job."""

    exit_code = 2

    def __init__(self, job_id: object, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message or f"no job with id {job_id}")


class ScheduleNotFound(QadminError):
    """No such recurring schedule."""

    exit_code = 2

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no recurring schedule named {name!r} (`qadmin recurring` lists them)")


class ErrorGroupNotFound(QadminError):
    """No failed job has an error with this fingerprint (any more)."""

    exit_code = 2


class InvalidTransition(QadminError):
    """The job is not in a state that allows this."""

    exit_code = 2

    def __init__(self, job_id: object, current: str, wanted: str) -> None:
        self.job_id, self.current, self.wanted = job_id, current, wanted
        super().__init__(f"cannot {wanted} job {job_id}: it is {current}")


class LiveHolders(QadminError):
    """An unlock would free jobs that a worker which looks alive holds: they may then run twice.
    Refused unless the caller says it knows (`--yes`, `force`)."""

    exit_code = 2


class DecodeError(QadminError):
    """The payload cannot be decoded."""

    def __init__(self, format: str, reason: str) -> None:
        self.format, self.reason = format, reason
        super().__init__(f"{format}: {reason}")


class JobClassNotFound(QadminError):
    """The job's class cannot be found."""
