"""Net and RpcClient: TCP-like FIFO links, latency, partitions, drops, delays, pauses, crashes."""

from dataclasses import dataclass
from typing import Any

from sim.net import DropRule, Net, RpcClient
from sim.protocol import Errors
from sim.world import World

LATENCY_MS = 2.0


@dataclass(frozen=True)
class Ping:
    request_id: int


@dataclass(frozen=True)
class Pong:
    request_id: int


@dataclass(frozen=True)
class Note:
    n: int


class Recorder:
    """A node that records what it receives and every reset it hears, with times."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.received: list[tuple[float, str, Any]] = []
        self.disconnects: list[tuple[float, str]] = []

    def receive(self, source: str, message: Any) -> None:
        self.received.append((self.world.now_ms, source, message))

    def on_disconnect(self, peer: str) -> None:
        self.disconnects.append((self.world.now_ms, peer))

    def messages(self) -> list[Any]:
        return [message for _, _, message in self.received]


def _net(*names: str, latency_ms: float = LATENCY_MS, jitter_ms: float = 0.0, seed: int = 1):
    world = World(seed)
    net = Net(world, latency_ms, jitter_ms)
    nodes = {name: Recorder(world) for name in names}
    for name in names:
        net.add_node(name, nodes[name])
    return world, net, nodes


def _run(world: World, until_ms: float) -> None:
    world.env.run(until=until_ms)


def _send_at(world: World, net: Net, at_ms: float, source: str, target: str, message: Any):
    world.call_later(at_ms - world.now_ms, net.send, source, target, message)


# --- latency and order -------------------------------------------------------------------


def test_a_message_arrives_after_one_latency() -> None:
    world, net, nodes = _net("a", "b")
    _send_at(world, net, 10.0, "a", "b", Note(1))
    _run(world, 100.0)
    assert nodes["b"].received == [(10.0 + LATENCY_MS, "a", Note(1))]
    assert nodes["a"].received == []


def test_every_node_reaches_every_other_both_ways() -> None:
    world, net, nodes = _net("a", "b", "c")
    assert net.names == ["a", "b", "c"]
    assert all(net.reachable(s, t) for s in net.names for t in net.names if s != t)


def test_jitter_never_reorders_one_direction() -> None:
    world, net, nodes = _net("a", "b", latency_ms=5.0, jitter_ms=4.9, seed=3)
    for n in range(300):
        _send_at(world, net, n * 0.5, "a", "b", Note(n))
    _run(world, 1_000.0)
    assert [m.n for m in nodes["b"].messages()] == list(range(300))
    times = [t for t, _, _ in nodes["b"].received]
    assert times == sorted(times)
    delays = {round(t - m.n * 0.5, 6) for t, _, m in nodes["b"].received}
    assert len(delays) > 50, "the jitter really varied the latency"


def test_jitter_delays_stay_within_the_band_when_sends_are_sparse() -> None:
    world, net, nodes = _net("a", "b", latency_ms=5.0, jitter_ms=2.0, seed=4)
    for n in range(100):
        _send_at(world, net, n * 100.0, "a", "b", Note(n))
    _run(world, 20_000.0)
    delays = [t - m.n * 100.0 for t, _, m in nodes["b"].received]
    assert len(delays) == 100
    assert all(3.0 <= d <= 7.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 50


def test_the_two_directions_of_a_link_are_independent() -> None:
    world, net, nodes = _net("a", "b")
    net.add_delay("a", "b", 50.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    _send_at(world, net, 0.0, "b", "a", Note(2))
    _run(world, 100.0)
    assert nodes["a"].received == [(LATENCY_MS, "b", Note(2))]
    assert nodes["b"].received == [(LATENCY_MS + 50.0, "a", Note(1))]


# --- delay ------------------------------------------------------------------------------


def test_delay_adds_latency_to_one_directed_link_only() -> None:
    world, net, nodes = _net("a", "b", "c")
    net.add_delay("a", "b", 30.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    _send_at(world, net, 0.0, "a", "c", Note(2))
    _run(world, 100.0)
    assert [t for t, _, _ in nodes["b"].received] == [LATENCY_MS + 30.0]
    assert [t for t, _, _ in nodes["c"].received] == [LATENCY_MS]


def test_removing_a_delay_does_not_let_later_messages_overtake() -> None:
    world, net, nodes = _net("a", "b")
    net.add_delay("a", "b", 40.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(1.0, net.remove_delay, "a", "b", 40.0)
    _send_at(world, net, 2.0, "a", "b", Note(2))
    _send_at(world, net, 100.0, "a", "b", Note(3))
    _run(world, 200.0)
    assert nodes["b"].received == [
        (42.0, "a", Note(1)),
        (42.0, "a", Note(2)),
        (102.0, "a", Note(3)),
    ]


def test_delays_add_up_and_heal_removes_them() -> None:
    world, net, nodes = _net("a", "b")
    net.add_delay("a", "b", 10.0)
    net.add_delay("a", "b", 5.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(50.0, net.heal)
    _send_at(world, net, 60.0, "a", "b", Note(2))
    _run(world, 200.0)
    assert [t for t, _, _ in nodes["b"].received] == [17.0, 62.0]


# --- partitions --------------------------------------------------------------------------


def test_a_partition_loses_messages_both_ways() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b"), ("b", "a")])
    _send_at(world, net, 0.0, "a", "b", Note(1))
    _send_at(world, net, 0.0, "b", "a", Note(2))
    _run(world, 100.0)
    assert nodes["a"].received == [] and nodes["b"].received == []
    lost = [(e.field("source"), e.field("why")) for e in world.events if e.kind == "net.lost"]
    assert lost == [("a", "partition"), ("b", "partition")]


def test_a_one_way_partition_cuts_only_its_direction() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b")])
    assert not net.reachable("a", "b") and net.reachable("b", "a")
    _send_at(world, net, 0.0, "a", "b", Note(1))
    _send_at(world, net, 0.0, "b", "a", Note(2))
    _run(world, 100.0)
    assert nodes["b"].received == []
    assert nodes["a"].messages() == [Note(2)]


def test_a_message_in_flight_when_the_link_is_cut_is_lost() -> None:
    world, net, nodes = _net("a", "b", latency_ms=10.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(5.0, net.cut_links, [("a", "b")])
    _run(world, 100.0)
    assert nodes["b"].received == []


def test_after_a_loss_the_direction_stays_silent_even_once_healed() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b")])
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(10.0, net.heal)
    _send_at(world, net, 20.0, "a", "b", Note(2))
    _send_at(world, net, 20.0, "b", "a", Note(3))
    _run(world, 100.0)
    assert net.reachable("a", "b")
    assert nodes["b"].received == [], "TCP keeps retransmitting the lost segment"
    assert nodes["a"].messages() == [Note(3)], "the other direction never lost anything"


def test_restore_links_does_not_unsilence_either() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b")])
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(10.0, net.restore_links, [("a", "b")])
    _send_at(world, net, 20.0, "a", "b", Note(2))
    _run(world, 100.0)
    assert nodes["b"].received == []


def test_reset_reopens_a_silent_connection() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b")])
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(10.0, net.heal)
    world.call_later(15.0, net.reset, "a", "b")
    _send_at(world, net, 20.0, "a", "b", Note(2))
    _run(world, 100.0)
    assert nodes["b"].received == [(20.0 + LATENCY_MS, "a", Note(2))]


def test_reset_discards_messages_in_flight_both_ways_without_telling_anyone() -> None:
    world, net, nodes = _net("a", "b", latency_ms=10.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    _send_at(world, net, 0.0, "b", "a", Note(2))
    world.call_later(5.0, net.reset, "b", "a")
    _send_at(world, net, 6.0, "a", "b", Note(3))
    _run(world, 100.0)
    assert nodes["b"].messages() == [Note(3)]
    assert nodes["a"].received == []
    assert nodes["a"].disconnects == [] and nodes["b"].disconnects == []


def test_a_partition_leaves_other_links_alone() -> None:
    world, net, nodes = _net("a", "b", "c")
    net.cut_links([("a", "b"), ("b", "a")])
    _send_at(world, net, 0.0, "a", "c", Note(1))
    _send_at(world, net, 0.0, "c", "b", Note(2))
    _run(world, 100.0)
    assert nodes["c"].messages() == [Note(1)]
    assert nodes["b"].messages() == [Note(2)]


# --- crash and restart -------------------------------------------------------------------


def test_a_crash_notifies_each_reachable_peer_after_one_latency() -> None:
    world, net, nodes = _net("a", "b", "c", "d")
    net.cut_links([("b", "c")])  # b's reset cannot reach c
    world.call_later(10.0, net.crash, "b")
    _run(world, 100.0)
    assert nodes["a"].disconnects == [(10.0 + LATENCY_MS, "b")]
    assert nodes["d"].disconnects == [(10.0 + LATENCY_MS, "b")]
    assert nodes["c"].disconnects == []
    assert nodes["b"].disconnects == []
    assert not net.is_up("b")


def test_a_crash_loses_messages_in_flight_to_the_node_even_if_it_restarts_first() -> None:
    world, net, nodes = _net("a", "b", latency_ms=10.0)
    _send_at(world, net, 0.0, "a", "b", Note(1))
    world.call_later(2.0, net.crash, "b")
    world.call_later(4.0, net.restart, "b")
    _send_at(world, net, 20.0, "a", "b", Note(2))
    _run(world, 100.0)
    assert nodes["b"].messages() == [Note(2)]


def test_a_crashed_node_sends_nothing() -> None:
    world, net, nodes = _net("a", "b")
    world.call_later(1.0, net.crash, "a")
    _send_at(world, net, 5.0, "a", "b", Note(1))
    _run(world, 100.0)
    assert nodes["b"].received == []


def test_sending_to_a_crashed_node_is_refused_after_a_round_trip() -> None:
    world, net, nodes = _net("a", "b", "c")
    net.cut_links([("b", "a")])  # a hears no reset from the crash itself
    world.call_later(1.0, net.crash, "b")
    _send_at(world, net, 10.0, "a", "b", Note(1))
    _run(world, 100.0)
    assert nodes["a"].disconnects == [(10.0 + 2 * LATENCY_MS, "b")]
    assert nodes["b"].received == []


def test_a_restarted_node_receives_again() -> None:
    world, net, nodes = _net("a", "b")
    world.call_later(1.0, net.crash, "b")
    world.call_later(5.0, net.restart, "b")
    _send_at(world, net, 10.0, "a", "b", Note(1))
    _run(world, 100.0)
    assert nodes["b"].received == [(10.0 + LATENCY_MS, "a", Note(1))]


def test_a_crash_clears_silence_on_the_nodes_connections() -> None:
    world, net, nodes = _net("a", "b")
    net.cut_links([("a", "b")])
    _send_at(world, net, 0.0, "a", "b", Note(1))  # a->b goes silent
    world.call_later(5.0, net.heal)
    world.call_later(10.0, net.crash, "b")
    world.call_later(20.0, net.restart, "b")
    _send_at(world, net, 30.0, "a", "b", Note(2))
    _run(world, 100.0)
    assert nodes["b"].messages() == [Note(2)]


# --- drops --------------------------------------------------------------------------------


def _drop(message: str, count: int | None = None, probability: float | None = None) -> DropRule:
    return DropRule(frozenset({"a"}), frozenset({"b"}), message, count, probability)


def test_a_drop_loses_matching_messages_count_times_then_stops() -> None:
    world, net, nodes = _net("a", "b")
    rule = _drop("Ping", count=2)
    net.add_drop(rule)
    for n in range(4):
        _send_at(world, net, 10.0 * n, "a", "b", Ping(n))
        world.call_later(10.0 * n + 5.0, net.reset, "a", "b")  # the client reconnects
    _run(world, 100.0)
    assert nodes["b"].messages() == [Ping(2), Ping(3)]
    assert rule.count == 0
    assert [e.field("why") for e in world.events if e.kind == "net.lost"] == ["drop", "drop"]


def test_a_drop_silences_the_direction_until_reset() -> None:
    world, net, nodes = _net("a", "b")
    net.add_drop(_drop("Ping", count=1))
    _send_at(world, net, 0.0, "a", "b", Ping(1))
    _send_at(world, net, 1.0, "a", "b", Note(2))  # not a Ping, yet it cannot overtake
    _send_at(world, net, 1.0, "b", "a", Note(3))
    _run(world, 100.0)
    assert nodes["b"].received == []
    assert nodes["a"].messages() == [Note(3)]


def test_a_drop_matches_only_its_message_type_and_links() -> None:
    world, net, nodes = _net("a", "b", "c")
    net.add_drop(_drop("Ping", count=5))
    _send_at(world, net, 0.0, "a", "b", Pong(1))
    _send_at(world, net, 0.0, "a", "c", Ping(2))
    _send_at(world, net, 0.0, "b", "a", Ping(3))
    _run(world, 100.0)
    assert nodes["b"].messages() == [Pong(1)]
    assert nodes["c"].messages() == [Ping(2)]
    assert nodes["a"].messages() == [Ping(3)]


def test_a_drop_by_probability_loses_about_that_share_and_is_seeded() -> None:
    def delivered(seed: int, probability: float) -> list[int]:
        world, net, nodes = _net("a", "b", seed=seed)
        net.add_drop(_drop("Ping", probability=probability))
        for n in range(200):
            _send_at(world, net, 10.0 * n, "a", "b", Ping(n))
            world.call_later(10.0 * n + 5.0, net.reset, "a", "b")
        _run(world, 3_000.0)
        return [m.request_id for m in nodes["b"].messages()]

    assert delivered(1, 1.0) == []
    assert delivered(1, 0.0) == list(range(200))
    half = delivered(1, 0.3)
    assert 100 < len(half) < 180
    assert delivered(1, 0.3) == half, "the same seed drops the same messages"
    assert delivered(2, 0.3) != half


def test_remove_drop_and_heal_end_drops() -> None:
    world, net, nodes = _net("a", "b")
    rule = _drop("Ping", count=10)
    net.add_drop(rule)
    net.remove_drop(rule)
    net.add_drop(_drop("Pong", count=10))
    net.heal()
    _send_at(world, net, 0.0, "a", "b", Ping(1))
    _send_at(world, net, 1.0, "a", "b", Pong(2))
    _run(world, 100.0)
    assert nodes["b"].messages() == [Ping(1), Pong(2)]


# --- pause --------------------------------------------------------------------------------


def test_pause_holds_traffic_to_a_node_until_resume_in_order() -> None:
    world, net, nodes = _net("a", "b")
    net.pause("b")
    for n in range(3):
        _send_at(world, net, float(n), "a", "b", Note(n))
    world.call_later(50.0, net.resume, "b")
    _send_at(world, net, 50.0, "a", "b", Note(3))
    _run(world, 100.0)
    assert nodes["b"].received == [
        (50.0, "a", Note(0)),
        (50.0, "a", Note(1)),
        (50.0, "a", Note(2)),
        (50.0 + LATENCY_MS, "a", Note(3)),
    ]


def test_pause_holds_what_a_node_sends_until_resume() -> None:
    world, net, nodes = _net("a", "b")
    world.call_later(0.0, net.pause, "a")
    _send_at(world, net, 5.0, "a", "b", Note(1))
    world.call_later(40.0, net.resume, "a")
    _run(world, 100.0)
    assert net.is_paused("a") is False
    assert nodes["b"].received == [(40.0 + LATENCY_MS, "a", Note(1))]


def test_a_paused_node_hears_a_reset_only_when_it_resumes() -> None:
    world, net, nodes = _net("a", "b")
    net.pause("a")
    world.call_later(5.0, net.crash, "b")
    world.call_later(30.0, net.resume, "a")
    _run(world, 100.0)
    assert nodes["a"].disconnects == [(30.0, "b")]


# --- RpcClient -----------------------------------------------------------------------------


class Client(Recorder):
    """A node that calls through an RpcClient and records each request's outcome."""

    def __init__(self, world: World, net: Net, name: str) -> None:
        super().__init__(world)
        self.rpc = RpcClient(world, net, name)
        self.outcomes: list[tuple[float, int, Any]] = []

    def call(self, target: str, timeout_ms: float) -> int:
        request_id = self.rpc.next_request_id()
        self.rpc.call(
            target,
            Ping(request_id),
            timeout_ms,
            lambda response, rid=request_id: self.outcomes.append(
                (self.world.now_ms, rid, response)
            ),
            lambda error, rid=request_id: self.outcomes.append((self.world.now_ms, rid, error)),
        )
        return request_id

    def receive(self, source: str, message: Any) -> None:
        super().receive(source, message)
        self.rpc.handle_response(source, message)

    def on_disconnect(self, peer: str) -> None:
        super().on_disconnect(peer)
        self.rpc.on_disconnect(peer)


class Server(Recorder):
    """Answers each Ping with a Pong after `think_ms` (or never, if None)."""

    def __init__(self, world: World, net: Net, name: str, think_ms: float | None = 0.0) -> None:
        super().__init__(world)
        self.net = net
        self.name = name
        self.think_ms = think_ms

    def receive(self, source: str, message: Any) -> None:
        super().receive(source, message)
        if self.think_ms is not None:
            self.world.call_later(
                self.think_ms, self.net.send, self.name, source, Pong(message.request_id)
            )


def _rpc_net(think_ms: float | None = 0.0, other_think_ms: float | None = 0.0):
    world = World(1)
    net = Net(world, LATENCY_MS, 0.0)
    client = Client(world, net, "client")
    server = Server(world, net, "server", think_ms)
    other = Server(world, net, "other", other_think_ms)
    net.add_node("client", client)
    net.add_node("server", server)
    net.add_node("other", other)
    return world, net, client, server, other


def test_rpc_matches_a_response_to_its_request() -> None:
    world, net, client, server, _ = _rpc_net(think_ms=3.0)
    first = client.call("server", 100.0)
    second = client.call("server", 100.0)
    assert client.rpc.in_flight("server") == 2
    _run(world, 200.0)
    assert client.outcomes == [
        (2 * LATENCY_MS + 3.0, first, Pong(first)),
        (2 * LATENCY_MS + 3.0, second, Pong(second)),
    ]
    assert client.rpc.pending == {}


def test_rpc_timeout_fails_that_request_with_request_timed_out_and_the_rest_with_network_exception() -> (
    None
):
    world, net, client, server, other = _rpc_net(think_ms=None, other_think_ms=50.0)
    first = client.call("server", 30.0)
    world.call_later(10.0, client.call, "server", 100.0)
    world.call_later(10.0, client.call, "other", 100.0)
    _run(world, 300.0)
    second, third = first + 1, first + 2
    assert client.outcomes == [
        (30.0, first, Errors.REQUEST_TIMED_OUT),
        (30.0, second, Errors.NETWORK_EXCEPTION),
        (10.0 + 2 * LATENCY_MS + 50.0, third, Pong(third)),
    ]
    assert [e.field("request") for e in world.events if e.kind == "rpc.timeout"] == [first]


def test_rpc_ignores_an_answer_that_arrives_after_its_timeout() -> None:
    world, net, client, server, _ = _rpc_net(think_ms=40.0)
    first = client.call("server", 20.0)
    _run(world, 200.0)
    assert [m for m in client.messages()] == [Pong(first)], "the answer did arrive, late"
    assert client.outcomes == [(20.0, first, Errors.REQUEST_TIMED_OUT)]
    second = client.call("server", 100.0)
    _run(world, 400.0)
    assert client.outcomes[-1] == (200.0 + 2 * LATENCY_MS + 40.0, second, Pong(second))
    assert len(client.outcomes) == 2


def test_rpc_timeout_discards_answers_already_in_flight() -> None:
    world, net, client, server, _ = _rpc_net(think_ms=0.0)
    net.add_delay("server", "client", 30.0)
    first = client.call("server", 20.0)  # the Pong is on the wire from 2 ms to 34 ms
    _run(world, 200.0)
    assert client.received == []
    assert client.outcomes == [(20.0, first, Errors.REQUEST_TIMED_OUT)]


def test_rpc_timeout_reopens_a_silent_connection() -> None:
    world, net, client, server, _ = _rpc_net()
    net.cut_links([("client", "server")])
    first = client.call("server", 20.0)
    world.call_later(10.0, net.heal)
    _run(world, 25.0)
    second = client.call("server", 100.0)
    _run(world, 100.0)
    assert client.outcomes == [
        (20.0, first, Errors.REQUEST_TIMED_OUT),
        (25.0 + 2 * LATENCY_MS, second, Pong(second)),
    ]


def test_a_late_or_unknown_response_is_ignored() -> None:
    world, net, client, server, _ = _rpc_net(think_ms=None)
    request_id = client.call("server", 1_000.0)
    assert not client.rpc.handle_response("server", Pong(request_id + 7))
    assert not client.rpc.handle_response("other", Pong(request_id)), "from the wrong node"
    assert client.rpc.handle_response("server", Pong(request_id))
    assert not client.rpc.handle_response("server", Pong(request_id)), "answered once"
    _run(world, 2_000.0)
    assert client.outcomes == [(0.0, request_id, Pong(request_id))]


def test_a_disconnect_fails_every_request_to_that_peer_with_network_exception() -> None:
    world, net, client, server, other = _rpc_net(think_ms=None, other_think_ms=20.0)
    first = client.call("server", 1_000.0)
    second = client.call("server", 1_000.0)
    third = client.call("other", 1_000.0)
    world.call_later(5.0, net.crash, "server")
    _run(world, 2_000.0)
    crash_heard = 5.0 + LATENCY_MS
    assert client.outcomes == [
        (crash_heard, first, Errors.NETWORK_EXCEPTION),
        (crash_heard, second, Errors.NETWORK_EXCEPTION),
        (2 * LATENCY_MS + 20.0, third, Pong(third)),
    ]


def test_a_call_to_a_crashed_node_fails_with_network_exception_after_a_round_trip() -> None:
    world, net, client, server, _ = _rpc_net()
    net.crash("server")
    _run(world, 10.0)
    request_id = client.call("server", 1_000.0)
    _run(world, 2_000.0)
    assert client.outcomes == [(10.0 + 2 * LATENCY_MS, request_id, Errors.NETWORK_EXCEPTION)]
    assert server.received == []


def test_close_all_forgets_requests_without_callbacks() -> None:
    world, net, client, server, _ = _rpc_net(think_ms=None)
    client.call("server", 10.0)
    client.rpc.close_all()
    _run(world, 100.0)
    assert client.outcomes == []
