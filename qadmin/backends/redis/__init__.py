"""The Redis backend, in Resque's key layout (docs/compatibility.md §1–§3, §8).

Resque, php-resque and resque-scheduler keep working on the same keys: qadmin writes their
payloads, failure entries, delayed items and worker records byte for byte, and keeps its own
bookkeeping under `NS qadmin:` (outside `queue:` and out of the `queues` set).

Reliable reserve (rule 8): a worker reads the first entries of a queue, decodes them, and only
claims one it can run, with a Lua script that moves exactly those bytes into qadmin's locked set
(`NS qadmin:locked`, scored by lock time) and writes Resque's `worker:ID`. A worker killed mid-job
loses nothing: its entry stays in the locked set until the job completes, fails, or an operator
unlocks it (`qadmin unlock --stale` puts it back at the head of its queue).

Every change is a guarded unit of `lua/apply.lua` (`server.run`): it happens only while the entry still holds
the bytes that were read, so an operator never acts on something else than what was shown.

Retrying a failure entry re-enqueues its whole payload and, like resque-web, keeps the entry
with a `retried_at` mark (such entries are history, in no state); `failed_on_retry="remove"` (or
`?failed_on_retry=remove` in the URL) removes it instead.

The parts, each given what it needs when the backend is built (`backend.py`): `server.py` (the
client, the key layout of `keys.py`, the scripts of `lua/`, errors, guarded batches), enqueue
(`enqueue.py`), a worker's session (`session.py`: `claims.py`, `outcomes.py`,
`own_connection.py`), listings (`listings.py` over `view.py`, `reader.py`, `twins.py`), changes
(`changes.py`, remembered reads in `memory.py`), counts (`stats.py`), workers, pauses and the
audit log (`workers.py`, `pauses.py`, `audit.py`). Stored entries become jobs in `records.py`,
their ids are `ids.py`'s, and where each lives is a `place.Place`.
"""

from qadmin.backends.redis.backend import RedisBackend
from qadmin.backends.redis.session import RedisWorkerSession, SuccessWrites

__all__ = ["RedisBackend", "RedisWorkerSession", "SuccessWrites"]
