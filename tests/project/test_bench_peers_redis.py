"""Every Redis peer of bench/peers/ runs its cell end to end on a real redis-server, at tiny size.

For each peer: `fill` puts 60 jobs, its `commands` run and exit by themselves, every stamp job
wrote its stamp and nothing is left in the peer's queue. A peer that is not installed here is
skipped with its own reason (`need`). Times are never asserted: this keeps the cells from rotting.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench.common import Skip, child_env, run_processes
from bench.peers import Peer
from bench.peers._plan import stamp_count

pytestmark = pytest.mark.slow

MODULES = ("rq", "dramatiq", "huey", "arq", "sidekiq")
JOBS = 60


def redis_peers() -> list[Peer]:
    return [peer for name in MODULES for peer in importlib.import_module(f"bench.peers.{name}").PEERS]


def test_every_redis_module_has_peers() -> None:
    for name in MODULES:
        peers = importlib.import_module(f"bench.peers.{name}").PEERS
        assert peers, name
        for peer in peers:
            assert peer.backend == "redis", peer.name
            assert peer.guarantee.startswith(("rerun", "lost")), peer.name
            assert peer.settings, peer.name


def run_cell(peer: Peer, url: str, tmp_path: Path, processes: int) -> None:
    try:
        peer.need()
    except Skip as exc:
        pytest.skip(f"{peer.name}: {exc}")
    stamps = tmp_path / "stamps"
    peer.fill(url, JOBS, str(stamps))
    assert peer.remaining(url) == JOBS, f"{peer.name}: fill did not put {JOBS} jobs on the queue it reads"
    log = tmp_path / "worker.log"
    try:
        run_processes(peer.commands(url, processes), timeout=120, log_path=log, env=child_env(**peer.env))
    except RuntimeError as exc:
        raise AssertionError(f"{peer.name}: {exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    written = stamps.read_text().splitlines() if stamps.exists() else []
    assert len(written) == stamp_count(JOBS), f"{peer.name}: {len(written)} stamps\n{log.read_text()[-3000:]}"
    assert peer.remaining(url) == 0, peer.name


@pytest.mark.parametrize("peer", redis_peers(), ids=lambda p: p.name)
def test_peer_runs_every_job_and_exits(peer: Peer, redis_url: str, tmp_path: Path) -> None:
    run_cell(peer, redis_url, tmp_path, 1)


@pytest.mark.parametrize(
    "peer",
    [importlib.import_module(f"bench.peers.{name}").PEERS[0] for name in MODULES],
    ids=lambda p: p.name,
)
def test_peer_two_processes_share_the_queue_and_exit(peer: Peer, redis_url: str, tmp_path: Path) -> None:
    run_cell(peer, redis_url, tmp_path, 2)
