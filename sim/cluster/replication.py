"""Replication: followers fetch from leaders; leaders serve and track them.

Follower side (`ReplicaFetcherThread`): one fetcher process per leader this
broker follows. Each fetch names, per partition, the follower's LEO and the
epoch of its last batch. Leader side (`Partition.fetchRecords`): the leader
first checks that the follower's log agrees with its own at that epoch; if
not, it answers with the *diverging epoch* and its end offset, and the
follower truncates to min(that offset, its own end offset for that epoch)
before fetching again. That is KIP-101/279 truncation by leader epoch, in
its ≥2.8 form (KAFKA-10554). Never truncation to the follower's HW.

A fetch with nothing new waits at the leader up to
`replica.fetch.wait.max.ms` (a long poll), so idle replication costs one
event per half second, not a busy loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import simpy

from sim.cluster.partition import FOLLOWER, LEADER
from sim.protocol import (
    Errors,
    FetchPartition,
    FetchPartitionData,
    FetchRequest,
    FetchResponse,
)

if TYPE_CHECKING:
    from sim.cluster.broker import Broker

MAX_BATCHES_PER_FETCH = 64


@dataclass
class _ParkedFetch:
    source: str
    request: FetchRequest
    keys: frozenset[tuple[str, int]]
    done: bool = False


class FetchServer:
    """The leader side: answer follower fetches, parking those with nothing new."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.parked: list[_ParkedFetch] = []

    def clear(self) -> None:
        self.parked = []

    def handle(self, source: str, request: FetchRequest) -> None:
        data = self._serve(request)
        has_news = any(d.batches or d.diverging_epoch or d.error != Errors.NONE for d in data)
        if has_news or request.max_wait_ms <= 0:
            self._respond(source, request, data)
            return
        keys = frozenset((p.topic, p.partition) for p in request.partitions)
        parked = _ParkedFetch(source, request, keys)
        self.parked.append(parked)
        self.broker.world.call_later(
            request.max_wait_ms, self._expire, parked, self.broker.incarnation
        )

    def on_append(self, key: tuple[str, int]) -> None:
        """New data on a partition: answer the fetches waiting for it."""
        if not self.parked:
            return
        ready = [p for p in self.parked if not p.done and key in p.keys]
        for parked in ready:
            parked.done = True
            self.parked.remove(parked)
            self._respond(parked.source, parked.request, self._serve(parked.request))

    def _expire(self, parked: _ParkedFetch, incarnation: int) -> None:
        if parked.done or not self.broker.running(incarnation):
            return
        parked.done = True
        self.parked.remove(parked)
        self._respond(parked.source, parked.request, self._serve(parked.request))

    def _respond(self, source: str, request: FetchRequest, data: list[FetchPartitionData]) -> None:
        broker = self.broker
        broker.net.send(broker.name, source, FetchResponse(request.request_id, tuple(data)))

    def _serve(self, request: FetchRequest) -> list[FetchPartitionData]:
        return [self._serve_partition(request.replica_id, p) for p in request.partitions]

    def _serve_partition(self, follower: int, fetch: FetchPartition) -> FetchPartitionData:
        broker = self.broker
        key = (fetch.topic, fetch.partition)
        replica = broker.replicas.get(key)
        if replica is None or replica.role != LEADER:
            return FetchPartitionData(fetch.topic, fetch.partition, Errors.NOT_LEADER_OR_FOLLOWER)
        if fetch.current_leader_epoch < replica.leader_epoch:
            return FetchPartitionData(fetch.topic, fetch.partition, Errors.FENCED_LEADER_EPOCH)
        if fetch.current_leader_epoch > replica.leader_epoch:
            return FetchPartitionData(fetch.topic, fetch.partition, Errors.UNKNOWN_LEADER_EPOCH)
        log = replica.log
        if fetch.last_fetched_epoch >= 0:
            epoch, end_offset = log.end_offset_for_epoch(fetch.last_fetched_epoch)
            if epoch != fetch.last_fetched_epoch or end_offset < fetch.fetch_offset:
                return FetchPartitionData(
                    fetch.topic,
                    fetch.partition,
                    Errors.NONE,
                    log.hw,
                    diverging_epoch=(epoch, end_offset),
                )
        assert fetch.fetch_offset <= log.leo, (key, fetch.fetch_offset, log.leo)
        now = broker.world.now_ms
        replica.update_follower(follower, fetch.fetch_offset, now)
        if replica.pending_isr is None and replica.can_join_isr(follower):
            broker.propose_isr(key, replica, tuple(sorted((*replica.isr, follower))))
        replica.maybe_increment_hw()
        batches = log.read_from(fetch.fetch_offset, MAX_BATCHES_PER_FETCH)
        return FetchPartitionData(fetch.topic, fetch.partition, Errors.NONE, log.hw, batches)


@dataclass
class _Fetcher:
    leader: int
    incarnation: int
    wake: simpy.Event | None = None
    keys: list[tuple[str, int]] = field(default_factory=list)


class ReplicaFetchers:
    """The follower side: one fetcher process per leader followed."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.fetchers: dict[int, _Fetcher] = {}

    def sync(self) -> None:
        """Start a fetcher for every leader we now follow (after a metadata change)."""
        broker = self.broker
        leaders = sorted(
            {r.leader for r in broker.replicas.values() if r.role == FOLLOWER and r.leader >= 0}
        )
        for leader in leaders:
            fetcher = self.fetchers.get(leader)
            if fetcher is None or fetcher.incarnation != broker.incarnation:
                fetcher = _Fetcher(leader, broker.incarnation)
                self.fetchers[leader] = fetcher
                broker.world.process(self._fetch_loop(fetcher))

    def _partitions(self, leader: int) -> list[tuple[str, int]]:
        replicas = self.broker.replicas
        return [
            k
            for k in sorted(replicas)
            if replicas[k].role == FOLLOWER and replicas[k].leader == leader
        ]

    def _fetch_loop(self, fetcher: _Fetcher):
        """Fetch from one leader until we follow none of its partitions."""
        broker = self.broker
        world = broker.world
        config = broker.config
        leader_name = f"broker-{fetcher.leader}"
        while broker.running(fetcher.incarnation) and self.fetchers.get(fetcher.leader) is fetcher:
            keys = self._partitions(fetcher.leader)
            if not keys:
                del self.fetchers[fetcher.leader]
                return
            if broker.net.is_paused(broker.name):
                yield world.timeout(config.replica_fetch_backoff_ms)
                continue
            partitions = tuple(
                FetchPartition(
                    k[0],
                    k[1],
                    broker.replicas[k].log.leo,
                    broker.replicas[k].log.last_epoch,
                    broker.replicas[k].leader_epoch,
                )
                for k in keys
            )
            request = FetchRequest(
                broker.rpc.next_request_id(),
                broker.id,
                partitions,
                config.replica_fetch_wait_max_ms,
            )
            done = world.env.event()
            broker.rpc.call(
                leader_name,
                request,
                config.replica_socket_timeout_ms,
                lambda response, done=done: done.succeed(response),
                lambda error, done=done: done.succeed(error),
            )
            outcome = yield done
            if not broker.running(fetcher.incarnation):
                return
            if isinstance(outcome, Errors):
                yield world.timeout(config.replica_fetch_backoff_ms)
                continue
            backoff = False
            for data in outcome.partitions:
                backoff |= not self._apply(fetcher.leader, data)
            if backoff:
                yield world.timeout(config.replica_fetch_backoff_ms)

    def _apply(self, leader: int, data: FetchPartitionData) -> bool:
        """Apply one partition's fetched data; False when the fetch should back off."""
        broker = self.broker
        key = (data.topic, data.partition)
        replica = broker.replicas.get(key)
        if replica is None or replica.role != FOLLOWER or replica.leader != leader:
            return True
        if data.error != Errors.NONE:
            return False
        log = replica.log
        if data.diverging_epoch is not None:
            epoch, end_offset = data.diverging_epoch
            _, own_end = log.end_offset_for_epoch(epoch)
            target = end_offset if own_end < 0 else min(end_offset, own_end)
            if epoch < 0:
                target = 0
            old_leo = log.leo
            log.truncate_to(max(target, 0))
            broker.world.trace(
                "broker.truncate",
                broker=broker.id,
                topic=key[0],
                partition=key[1],
                from_offset=old_leo,
                to_offset=log.leo,
                reason=f"diverging from leader broker-{leader} at epoch {epoch}",
            )
            return True
        for log_batch in data.batches:
            if log_batch.base_offset != log.leo:
                break  # Stale response after a truncation; the next fetch resumes.
            log.append_replicated(log_batch)
        # A follower's HW is the leader's, capped by its own LEO (`maybeUpdateHighWatermark`,
        # bounded by [log start, LEO]); it may go down, e.g. after a failover to a leader
        # whose HW still lags: the leader's HW, not the follower's past, says what is committed.
        log.hw = min(data.high_watermark, log.leo)
        return True
