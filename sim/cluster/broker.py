"""A broker: request handling, metadata, and its background processes.

Handles ProduceRequest (`ReplicaManager.appendRecords` →
`Partition.appendRecordsToLeader`), Fetch from followers (in
`replication.py`), Metadata and InitProducerId; applies the controller's
metadata images (becoming leader or follower); heartbeats the controller;
proposes ISR changes; flushes its logs on the OS's writeback schedule.

A crash stops every process of the broker (they check `incarnation`), drops
its connections, and keeps its logs — a process crash leaves the page cache
intact — unless `lose_unflushed`, a power loss, cuts each log back to its
last flush. A restart recovers the logs and waits for the controller to
unfence it and send metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.cluster.broker_txn import TxnRequests
from sim.cluster.log import PartitionLog
from sim.cluster.partition import LEADER, NONE, DelayedProduce, Replica
from sim.cluster.replication import FetchServer, ReplicaFetchers
from sim.cluster.txn_coordinator import ABORT_SCAN_INTERVAL_MS, TXN_STATE_TOPIC
from sim.net import Net, RpcClient
from sim.protocol import (
    NO_PRODUCER_ID,
    AlterPartitionRequest,
    AlterPartitionResponse,
    ApiVersionsRequest,
    ApiVersionsResponse,
    BrokerHeartbeat,
    BrokerHeartbeatResponse,
    Errors,
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataImage,
    MetadataRequest,
    MetadataResponse,
    MetadataUpdate,
    PartitionProduceResult,
    PartitionState,
    ProduceRequest,
    ProduceResponse,
    RecordBatch,
    TxnMarker,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from sim.world import World

CONTROLLER = "controller"


@dataclass(frozen=True)
class BrokerConfig:
    """Broker settings (Kafka names, units last)."""

    replica_lag_time_max_ms: float = 30000
    broker_heartbeat_interval_ms: float = 2000
    replica_fetch_wait_max_ms: float = 500
    replica_fetch_backoff_ms: float = 1000
    replica_socket_timeout_ms: float = 30000
    flush_interval_ms: float = 30000
    transaction_state_log_num_partitions: int = 50
    offsets_topic_num_partitions: int = 50


@dataclass
class InjectedError:
    """The `error` fault: answer the next `count` such requests with `error`."""

    message: str
    error: Errors
    count: int


def broker_name(broker_id: int) -> str:
    return f"broker-{broker_id}"


class Broker:
    """One Kafka broker on the simulated network."""

    def __init__(self, world: World, net: Net, broker_id: int, config: BrokerConfig) -> None:
        self.world = world
        self.net = net
        self.id = broker_id
        self.name = broker_name(broker_id)
        self.config = config
        self.replicas: dict[tuple[str, int], Replica] = {}
        self.image: MetadataImage | None = None
        self.alive = True
        self.incarnation = 0
        self.registered = True
        """Whether the controller accepted this incarnation (the first one is registered)."""
        self.rpc = RpcClient(world, net, self.name)
        self.injected: list[InjectedError] = []
        self.fetch_server = FetchServer(self)
        self.fetchers = ReplicaFetchers(self)
        self._producer_ids = 0
        self.offsets_partitions = config.offsets_topic_num_partitions
        self.txn = TxnRequests(
            self, config.transaction_state_log_num_partitions, config.offsets_topic_num_partitions
        )
        net.add_node(self.name, self)

    def __repr__(self) -> str:
        return f"Broker({self.id}, alive={self.alive}, incarnation={self.incarnation})"

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        incarnation = self.incarnation
        self.world.process(self._heartbeat_loop(incarnation))
        self.world.process(self._isr_loop(incarnation))
        self.world.process(self._flush_loop(incarnation))
        self.world.process(self._abort_scan_loop(incarnation))

    def running(self, incarnation: int) -> bool:
        return self.alive and self.incarnation == incarnation

    def crash(self, lose_unflushed: bool) -> None:
        assert self.alive, f"{self.name} is already down"
        self.alive = False
        self.incarnation += 1
        self.net.crash(self.name)
        self.rpc.close_all()
        self.fetch_server.clear()
        for key in sorted(self.replicas):
            replica = self.replicas[key]
            replica.delayed = []
            replica.make_follower(-1, replica.leader_epoch, replica.isr)
            if lose_unflushed:
                lost = replica.log.lose_unflushed()
                if lost:
                    self.world.trace(
                        "broker.truncate",
                        broker=self.id,
                        topic=key[0],
                        partition=key[1],
                        from_offset=replica.log.leo + lost,
                        to_offset=replica.log.leo,
                        reason="power loss: unflushed suffix",
                    )
        self.image = None
        self.registered = False
        self.txn.coordinator.clear()
        self.world.trace("broker.crash", broker=self.id, lose_unflushed=lose_unflushed)

    def restart(self) -> None:
        assert not self.alive, f"{self.name} is not down"
        self.alive = True
        self.incarnation += 1
        self.net.restart(self.name)
        self.world.trace("broker.restart", broker=self.id)
        self.start()

    # --- processes -------------------------------------------------------------------

    def _heartbeat_loop(self, incarnation: int):
        """Heartbeat the controller, forever (until this incarnation ends)."""
        interval = self.config.broker_heartbeat_interval_ms
        while self.running(incarnation):
            if not self.net.is_paused(self.name):
                version = self.image.version if self.image is not None else -1
                request = BrokerHeartbeat(self.rpc.next_request_id(), self.id, incarnation, version)
                self.rpc.call(CONTROLLER, request, interval * 2, self._on_heartbeat, _ignore)
            yield self.world.timeout(interval)

    def _on_heartbeat(self, response: BrokerHeartbeatResponse) -> None:
        pass  # Metadata arrives as MetadataUpdate; fencing is the controller's business.

    def _isr_loop(self, incarnation: int):
        """Shrink the ISR of lagging followers every lag/2 (`isr-expiration`), forever."""
        period = self.config.replica_lag_time_max_ms / 2
        while self.running(incarnation):
            yield self.world.timeout(period)
            if not self.running(incarnation) or self.net.is_paused(self.name):
                continue
            for key in sorted(self.replicas):
                replica = self.replicas[key]
                if replica.role != LEADER or replica.pending_isr is not None:
                    continue
                lagging = replica.out_of_sync(
                    self.world.now_ms, self.config.replica_lag_time_max_ms
                )
                if lagging:
                    new_isr = tuple(r for r in replica.isr if r not in lagging)
                    self.propose_isr(key, replica, new_isr)

    def _abort_scan_loop(self, incarnation: int):
        """Abort transactions past their timeout every 10 s (`abortTimedOutTransactions`), forever."""
        while self.running(incarnation):
            yield self.world.timeout(ABORT_SCAN_INTERVAL_MS)
            if self.running(incarnation) and not self.net.is_paused(self.name):
                self.txn.coordinator.abort_timed_out()

    def _flush_loop(self, incarnation: int):
        """The OS writes dirty pages back periodically, forever."""
        while self.running(incarnation):
            yield self.world.timeout(self.config.flush_interval_ms)
            if self.running(incarnation):
                for key in sorted(self.replicas):
                    self.replicas[key].log.flush()

    # --- the wire --------------------------------------------------------------------

    def receive(self, source: str, message: Any) -> None:
        if not self.alive:
            return
        if isinstance(message, ProduceRequest):
            self.handle_produce(source, message)
        elif isinstance(message, FetchRequest):
            self.fetch_server.handle(source, message)
        elif isinstance(message, MetadataUpdate):
            # A restarted broker acts on no metadata until the controller has accepted its
            # new incarnation: KRaft rejects the registration while the old session is
            # valid (`ClusterControlManager.registerBroker`, DuplicateBrokerRegistration)
            # and the broker starts fenced, so it never resumes its previous incarnation's
            # leadership at the old epoch (which would make followers truncate to it).
            if self.registered:
                self.apply_image(message.image)
        elif isinstance(message, MetadataRequest):
            self.handle_metadata(source, message)
        elif isinstance(message, ApiVersionsRequest):
            self.net.send(self.name, source, ApiVersionsResponse(message.request_id))
        elif self.txn.handle(source, message):
            pass
        elif isinstance(message, InitProducerIdRequest):
            self.handle_init_producer_id(source, message)
        elif isinstance(message, BrokerHeartbeatResponse):
            # Any answer reaching this incarnation (crash resets the connection, so none
            # from an older one) means the controller accepted it, even if it came late.
            self.registered = True
            self.rpc.handle_response(source, message)
        elif isinstance(message, FetchResponse | AlterPartitionResponse | WriteTxnMarkersResponse):
            self.rpc.handle_response(source, message)
        else:
            raise AssertionError(f"{self.name}: unexpected {type(message).__name__}")

    def on_disconnect(self, peer: str) -> None:
        if self.alive:
            self.rpc.on_disconnect(peer)

    def take_injected(self, message: str) -> Errors | None:
        for rule in self.injected:
            if rule.message == message and rule.count > 0:
                rule.count -= 1
                return rule.error
        return None

    # --- produce ---------------------------------------------------------------------

    def handle_produce(self, source: str, request: ProduceRequest) -> None:
        results: dict[tuple[str, int], PartitionProduceResult] = {}
        waiting: list[tuple[str, int]] = []

        def respond() -> None:
            if request.acks == 0 or waiting or not self.alive:
                return
            ordered = tuple(results[(t, p)] for t, p, _ in request.entries)
            self.net.send(self.name, source, ProduceResponse(request.request_id, ordered))

        injected = self.take_injected("ProduceRequest")
        for topic, partition, batch in request.entries:
            key = (topic, partition)
            outcome = self._append(key, batch, request.acks, injected)
            if isinstance(outcome, PartitionProduceResult):
                results[key] = outcome
                continue
            waiting.append(key)
            base_offset, delayed_error = outcome

            def complete(
                error: Errors, key=key, base_offset=base_offset, delayed_error=delayed_error
            ):
                if key not in waiting:
                    return
                waiting.remove(key)
                final = delayed_error if error == Errors.NONE and delayed_error else error
                results[key] = PartitionProduceResult(
                    key[0], key[1], final, base_offset if final == Errors.NONE else -1
                )
                respond()

            replica = self.replicas[key]
            delayed = DelayedProduce(base_offset + batch.record_count, complete)
            replica.delayed.append(delayed)
            replica.complete_delayed()
            if not delayed.done:
                self.world.call_later(request.timeout_ms, self._expire_delayed, delayed)
        respond()

    def _injected(self, topic: str, partition: int, error: Errors) -> PartitionProduceResult:
        """The `error` fault's answer, traced so witnesses can name it."""
        self.world.trace(
            "broker.inject", broker=self.id, topic=topic, partition=partition, error=error.name
        )
        return PartitionProduceResult(topic, partition, error)

    def _expire_delayed(self, delayed: DelayedProduce) -> None:
        if not delayed.done:
            delayed.done = True
            delayed.complete(Errors.REQUEST_TIMED_OUT)

    def _append(
        self, key: tuple[str, int], batch: RecordBatch, acks: int, injected: Errors | None
    ) -> PartitionProduceResult | tuple[int, Errors | None]:
        """Append one batch as leader; a result now, or (base offset, error) to wait on."""
        topic, partition = key
        replica = self.replicas.get(key)
        if replica is None or replica.role != LEADER:
            hint = replica.leader if replica is not None and replica.leader >= 0 else None
            return PartitionProduceResult(
                topic, partition, Errors.NOT_LEADER_OR_FOLLOWER, current_leader=hint
            )
        if injected not in (None, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
            return self._injected(topic, partition, injected)
        if acks == -1 and replica.under_min_isr():
            return PartitionProduceResult(topic, partition, Errors.NOT_ENOUGH_REPLICAS)
        log = replica.log
        duplicate = log.producer_state.find_duplicate(batch)
        if duplicate is not None:
            self.world.trace(
                "broker.duplicate",
                broker=self.id,
                topic=topic,
                partition=partition,
                base_offset=duplicate,
            )
            base_offset = duplicate
        else:
            error = log.producer_state.check(batch)
            if error != Errors.NONE:
                self.world.trace(
                    "broker.reject",
                    broker=self.id,
                    topic=topic,
                    partition=partition,
                    error=error.name,
                    producer_id=batch.producer_id,
                    sequence=batch.base_sequence,
                )
                return PartitionProduceResult(topic, partition, error)
            log_batch = log.append_as_leader(batch, replica.leader_epoch)
            base_offset = log_batch.base_offset
            self.world.trace(
                "broker.append",
                broker=self.id,
                topic=topic,
                partition=partition,
                base_offset=base_offset,
                count=batch.record_count,
                epoch=replica.leader_epoch,
            )
            replica.maybe_increment_hw()
            self.fetch_server.on_append(key)
        if injected == Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
            return self._injected(topic, partition, injected)
        if acks != -1:
            return PartitionProduceResult(topic, partition, Errors.NONE, base_offset)
        return (base_offset, None)

    # --- metadata and producer ids -----------------------------------------------------

    def handle_metadata(self, source: str, request: MetadataRequest) -> None:
        if self.image is None:
            return  # Not registered yet: the client times out and tries another broker.
        self.net.send(self.name, source, MetadataResponse(request.request_id, self.image))

    def allocate_producer_id(self) -> int:
        """Producer ids come in blocks per broker (KIP-730), so they are unique
        cluster-wide; the counter models the controller-assigned block."""
        self._producer_ids += 1
        return self.id * 1_000_000 + self._producer_ids

    def handle_init_producer_id(self, source: str, request: InitProducerIdRequest) -> None:
        producer_id = self.allocate_producer_id()
        response = InitProducerIdResponse(request.request_id, Errors.NONE, producer_id, 0)
        self.world.trace("broker.init_producer_id", broker=self.id, producer_id=producer_id)
        self.net.send(self.name, source, response)

    def apply_image(self, image: MetadataImage) -> None:
        """Become leader or follower as the controller's image says."""
        if self.image is not None and image.version <= self.image.version:
            return
        self.image = image
        min_insync = dict(image.topic_configs)
        for state in image.partitions:
            if self.id not in state.replicas:
                continue
            key = (state.topic, state.partition)
            replica = self.replicas.get(key)
            if replica is None:
                replica = Replica(PartitionLog(*key), state.replicas, min_insync[state.topic])
                self.replicas[key] = replica
            replica.min_insync = min_insync[state.topic]
            self._apply_partition(key, replica, state)
            if state.topic == TXN_STATE_TOPIC:
                self.txn.coordinator.on_leadership(
                    state.partition, state.leader_epoch, state.leader == self.id
                )
        self.fetchers.sync()

    # --- internal appends (coordinators, markers) ------------------------------------------

    def leader_of(self, key: tuple[str, int]) -> int:
        state = self.image.partition(*key) if self.image is not None else None
        return -1 if state is None else state.leader

    def append_internal(
        self,
        key: tuple[str, int],
        payload: tuple[Any, ...],
        done: Callable[[Errors, int], None],
        producer: tuple[int, int] = (NO_PRODUCER_ID, -1),
        transactional: bool = False,
    ) -> None:
        """Append internal records (transaction state, offsets) with acks=all."""
        batch = RecordBatch(
            producer[0],
            producer[1],
            -1,
            (),
            64 + 32 * len(payload),
            self.world.now_ms,
            is_transactional=transactional,
            payload=payload,
        )
        self.append_batch(key, batch, done)

    def append_batch(
        self, key: tuple[str, int], batch: RecordBatch, done: Callable[[Errors, int], None]
    ) -> None:
        """Append as leader and call `done(error, base offset)` once the ISR has it."""
        outcome = self._append(key, batch, -1, None)
        if isinstance(outcome, PartitionProduceResult):
            done(outcome.error, outcome.base_offset)
            return
        base_offset, _ = outcome
        replica = self.replicas[key]
        delayed = DelayedProduce(
            base_offset + batch.record_count, lambda error: done(error, base_offset)
        )
        replica.delayed.append(delayed)
        replica.complete_delayed()
        if not delayed.done:
            self.world.call_later(
                self.config.replica_socket_timeout_ms, self._expire_delayed, delayed
            )

    def send_markers(
        self,
        leader: int,
        marker: TxnMarker,
        on_response: Callable[[Any], None],
        on_error: Callable[[Errors], None],
    ) -> None:
        request = WriteTxnMarkersRequest(self.rpc.next_request_id(), marker)
        self.rpc.call(
            broker_name(leader),
            request,
            self.config.replica_socket_timeout_ms,
            on_response,
            on_error,
        )

    def _apply_partition(
        self, key: tuple[str, int], replica: Replica, state: PartitionState
    ) -> None:
        now = self.world.now_ms
        if state.leader == self.id:
            if replica.role != LEADER or replica.leader_epoch != state.leader_epoch:
                replica.make_leader(self.id, state.leader_epoch, state.isr, now)
                self.world.trace(
                    "broker.become_leader",
                    broker=self.id,
                    topic=key[0],
                    partition=key[1],
                    epoch=state.leader_epoch,
                    leo=replica.log.leo,
                    hw=replica.log.hw,
                )
            elif state.partition_epoch > replica.partition_epoch:
                replica.isr = state.isr
                if replica.pending_isr == state.isr:
                    replica.pending_isr = None
            replica.partition_epoch = state.partition_epoch
            replica.maybe_increment_hw()
            return
        if replica.role == LEADER:
            replica.fail_delayed(Errors.NOT_LEADER_OR_FOLLOWER)
        if (
            replica.leader != state.leader
            or replica.leader_epoch != state.leader_epoch
            or replica.role == NONE
        ):
            replica.make_follower(state.leader, state.leader_epoch, state.isr)
        replica.isr = state.isr
        replica.partition_epoch = state.partition_epoch

    # --- ISR changes -------------------------------------------------------------------

    def propose_isr(self, key: tuple[str, int], replica: Replica, new_isr: tuple[int, ...]) -> None:
        """Send AlterPartition to the controller; one proposal at a time."""
        assert replica.role == LEADER and replica.pending_isr is None
        replica.pending_isr = new_isr
        self.world.trace(
            "broker.propose_isr",
            broker=self.id,
            topic=key[0],
            partition=key[1],
            isr=replica.isr,
            new_isr=new_isr,
        )
        request = AlterPartitionRequest(
            self.rpc.next_request_id(),
            self.id,
            key[0],
            key[1],
            replica.leader_epoch,
            replica.partition_epoch,
            new_isr,
        )
        incarnation = self.incarnation

        def on_response(response: AlterPartitionResponse) -> None:
            if not self.running(incarnation):
                return
            replica.pending_isr = None
            state = response.state
            accepted = response.error == Errors.NONE and state is not None
            if accepted and state.leader == self.id and state.leader_epoch == replica.leader_epoch:
                if state.partition_epoch >= replica.partition_epoch:
                    replica.isr = state.isr
                    replica.partition_epoch = state.partition_epoch
                replica.maybe_increment_hw()

        def on_error(error: Errors) -> None:
            if self.running(incarnation):
                replica.pending_isr = None

        self.rpc.call(
            CONTROLLER, request, self.config.replica_socket_timeout_ms, on_response, on_error
        )


def _ignore(_error: Errors) -> None:
    return None


__all__ = ["Broker", "BrokerConfig", "InjectedError", "broker_name", "NO_PRODUCER_ID"]
