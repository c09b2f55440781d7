"""One broker's replica of one partition: leader or follower bookkeeping.

After Kafka's `Partition.scala` and `Replica.scala`:

- As leader it tracks each follower's LEO and `lastCaughtUpTimeMs`
  (`updateFetchStateOrThrow`), computes the high watermark
  (`maybeIncrementLeaderHW`): the minimum LEO over the leader and every
  member of the *maximal* ISR (the ISR plus additions it has proposed). The
  HW only grows, and since 3.7 (KAFKA-15583) it does not advance at all
  while the ISR is smaller than min.insync.replicas.
- It proposes ISR shrinks (a follower with LEO behind the leader's and not
  caught up for `replica.lag.time.max.ms`) and expansions (a follower whose
  LEO reached the HW and the start of the current leader epoch).
- acks=all produce requests wait in a purgatory (`DelayedProduce`) until the
  HW passes their last offset.

The broker owns the processes and the wire; this class is state and rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sim.cluster.log import PartitionLog
from sim.protocol import Errors

LEADER, FOLLOWER, NONE = "leader", "follower", "none"


@dataclass
class FollowerState:
    """The leader's view of one follower (`Replica.scala`)."""

    leo: int | None = None  # None: unknown since this broker became leader
    last_caught_up_ms: float = 0.0
    last_fetch_leader_leo: int = 0
    last_fetch_ms: float = 0.0


@dataclass
class DelayedProduce:
    """An acks=all append waiting for the HW to pass `required_offset`."""

    required_offset: int
    complete: Callable[[Errors], None]
    done: bool = False


@dataclass
class Replica:
    """State of this broker's copy of one partition."""

    log: PartitionLog
    replicas: tuple[int, ...]
    min_insync: int
    role: str = NONE
    leader: int = -1
    leader_epoch: int = -1
    partition_epoch: int = -1
    isr: tuple[int, ...] = ()
    pending_isr: tuple[int, ...] | None = None  # an AlterPartition in flight
    followers: dict[int, FollowerState] = field(default_factory=dict)
    delayed: list[DelayedProduce] = field(default_factory=list)

    @property
    def effective_min_insync(self) -> int:
        """min(min.insync.replicas, #replicas) (`Partition.effectiveMinIsr`)."""
        return min(self.min_insync, len(self.replicas))

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The ISR plus proposed additions: what the HW must wait for."""
        if self.pending_isr is None:
            return self.isr
        return tuple(sorted(set(self.isr) | set(self.pending_isr)))

    def under_min_isr(self) -> bool:
        return len(self.isr) < self.effective_min_insync

    # --- leadership ------------------------------------------------------------

    def make_leader(self, broker_id: int, epoch: int, isr: tuple[int, ...], now_ms: float) -> None:
        """Kafka's `makeLeader`: new epoch entry at our LEO, follower LEOs unknown."""
        self.role = LEADER
        self.leader = broker_id
        self.leader_epoch = epoch
        self.isr = isr
        self.pending_isr = None
        self.log.assign_epoch(epoch, self.log.leo)
        self.followers = {
            r: FollowerState(None, now_ms, 0, now_ms) for r in self.replicas if r != broker_id
        }

    def make_follower(self, leader: int, epoch: int, isr: tuple[int, ...]) -> None:
        self.role = FOLLOWER if leader >= 0 else NONE
        self.leader = leader
        self.leader_epoch = epoch
        self.isr = isr
        self.pending_isr = None
        self.followers = {}

    def fail_delayed(self, error: Errors) -> None:
        """Answer every waiting acks=all produce with `error` (leadership lost)."""
        waiting, self.delayed = self.delayed, []
        for delayed in waiting:
            if not delayed.done:
                delayed.done = True
                delayed.complete(error)

    # --- leader: followers and the high watermark --------------------------------

    def update_follower(self, follower: int, fetch_offset: int, now_ms: float) -> None:
        """`updateFetchStateOrThrow`: the follower's LEO is its fetch offset."""
        state = self.followers.get(follower)
        if state is None:
            return
        if fetch_offset >= self.log.leo:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.last_fetch_leader_leo:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.leo = fetch_offset
        state.last_fetch_leader_leo = self.log.leo
        state.last_fetch_ms = now_ms

    def maybe_increment_hw(self) -> bool:
        """Advance the HW to min LEO over the maximal ISR; True if it moved."""
        assert self.role == LEADER
        if self.under_min_isr():
            return False  # KAFKA-15583 (3.7): no progress under min ISR.
        new_hw = self.log.leo
        for member in self.maximal_isr:
            if member == self.leader:
                continue
            state = self.followers.get(member)
            if state is None or state.leo is None:
                return False
            new_hw = min(new_hw, state.leo)
        if new_hw <= self.log.hw:
            return False
        assert new_hw <= self.log.leo, (new_hw, self.log.leo)
        self.log.hw = new_hw
        self.complete_delayed()
        return True

    def complete_delayed(self) -> None:
        """`checkEnoughReplicasReachOffset` for each waiting produce."""
        if not self.delayed:
            return
        still: list[DelayedProduce] = []
        for delayed in self.delayed:
            if delayed.done:
                continue
            if self.log.hw >= delayed.required_offset:
                delayed.done = True
                if len(self.maximal_isr) < self.effective_min_insync:
                    delayed.complete(Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
                else:
                    delayed.complete(Errors.NONE)
            else:
                still.append(delayed)
        self.delayed = still

    def out_of_sync(self, now_ms: float, lag_max_ms: float) -> list[int]:
        """ISR members to shrink away (`getOutOfSyncReplicas`)."""
        lagging = []
        for member in self.isr:
            if member == self.leader:
                continue
            state = self.followers.get(member)
            if state is None:
                continue
            behind = state.leo is None or state.leo != self.log.leo
            if behind and now_ms - state.last_caught_up_ms > lag_max_ms:
                lagging.append(member)
        return lagging

    def can_join_isr(self, follower: int) -> bool:
        """`isFollowerInSync`: LEO at or past the HW and this epoch's start."""
        state = self.followers.get(follower)
        if state is None or state.leo is None or follower in self.isr:
            return False
        epoch_start = self.log.epochs[-1][1] if self.log.epochs else 0
        return state.leo >= self.log.hw and state.leo >= epoch_start
