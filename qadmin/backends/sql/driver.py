"""SQL run on the DBAPI connection itself: statements compiled once to the driver's SQL, and driver
errors wrapped as SQLAlchemy would wrap them (so that the store turns them into qadmin's)."""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa


class DriverSql:
    """A statement compiled once to a positional driver's SQL (SQLite's `?`), run on the DBAPI
    connection itself: SQLAlchemy's per-execution work (a context, its events, the result
    wrapping) costs more than the statement on SQLite. Parameters go through their types' bind
    converters and result columns through their result converters, as SQLAlchemy would apply
    them; expanding parameters (`IN` lists) are rendered once per list length."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None:
            raise ValueError("DriverSql needs a positional paramstyle")
        self._compiled = compiled
        self._binds = {name: compiled.binds[name] for name in compiled.positiontup}
        self._expanding = [name for name, bind in self._binds.items() if bind.expanding]
        self._procs = {name: bind.type._cached_bind_processor(dialect) for name, bind in self._binds.items()}
        #: values the statement carries itself (a LIMIT, a literal compared with), used when not given
        self._defaults = {
            name: bind.effective_value for name, bind in self._binds.items() if not bind.required and not bind.expanding
        }
        self._shapes: dict[tuple[int, ...], tuple[str, list[tuple[str, Any]]]] = {}
        if not self._expanding:
            self._shapes[()] = (str(compiled), [(name, self._procs[name]) for name in compiled.positiontup])
        results = compiled._result_columns
        self.columns = [c.keyname for c in results]
        self._results = [
            (i, proc) for i, proc in enumerate(c.type._cached_result_processor(dialect, None) for c in results) if proc
        ]

    def shape(self, params: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]]:
        key = tuple(len(params[name]) for name in self._expanding)
        if key not in self._shapes:
            lengths = dict(zip(self._expanding, key))
            sample = {name: [None] * lengths[name] if name in lengths else None for name in self._binds}
            state = self._compiled.construct_expanded_state(sample)
            order: list[tuple[str, Any]] = []
            for name in state.positiontup:
                if name in self._binds:
                    order.append((name, self._procs[name]))
                else:  # `skip_3`: the third element of the expanding parameter `skip`
                    base, _, index = name.rpartition("_")
                    order.append(((base, int(index) - 1), self._procs[base]))  # type: ignore[arg-type]
            self._shapes[key] = (state.statement, order)
        return self._shapes[key]

    def args(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        sql, order = self.shape(params) if self._expanding else self._shapes[()]
        out = []
        defaults = self._defaults
        for name, proc in order:
            if name.__class__ is not str:
                value = params[name[0]][name[1]]
            elif name in params:
                value = params[name]
            else:
                value = defaults[name]
            out.append(value if proc is None else proc(value))
        return sql, out

    def execute(self, raw: Any, params: dict[str, Any]) -> Any:
        """Run on the DBAPI connection `raw` (its cursor); driver errors wrapped as SQLAlchemy's."""
        return self.run(raw, self.args(params))

    @staticmethod
    def run(raw: Any, bound: tuple[str, list[Any]]) -> Any:
        """Run a statement bound beforehand by `args` (bound before a lock is taken, run under it)."""
        try:
            return raw.execute(*bound)
        except Exception as exc:
            raise wrapped(bound[0], bound[1], exc) from exc

    def rowcount(self, raw: Any, params: dict[str, Any]) -> int:
        return int(self.execute(raw, params).rowcount)

    def fetch(self, raw: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The result rows as the driver gives them: `values` converts the few that are used."""
        rows: list[tuple[Any, ...]] = self.execute(raw, params).fetchall()
        return rows

    def values(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """One fetched row as a dict of converted values."""
        if self._results:
            converted = list(row)
            for i, proc in self._results:
                converted[i] = proc(converted[i])
            return dict(zip(self.columns, converted))
        return dict(zip(self.columns, row))


def wrapped(sql: str, args: Any, exc: Exception) -> Exception:
    """A driver error as SQLAlchemy would have wrapped it (what `Store.wrap` turns into qadmin's)."""
    for module in ("sqlite3", "psycopg"):
        dbapi = sys.modules.get(module)
        if dbapi is not None and isinstance(exc, dbapi.Error):
            error: Exception = sa.exc.DBAPIError.instance(sql, args, exc, dbapi.Error)
            return error
    return exc
