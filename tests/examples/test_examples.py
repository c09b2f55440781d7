"""The article's examples (examples/*.py) run and print what they should, and the
scenarios for the article's wrong claims show what they claim.

Each example is imported from its file and its `main()` called; the output is
deterministic (fixed seed), so partitions and offsets are checked exactly.
"""

from __future__ import annotations

import importlib.util
import shlex
import tomllib
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

import sim
import sim.runner as runner
from sim.cli import main as kpsim
from sim.errors import IllegalStateError, KafkaTimeoutError
from sim.result import RunResult
from sim.scenario import load_scenario
from sim.world import TraceEvent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCENARIOS = ROOT / "scenarios"

ARTICLE_EXAMPLES = (
    "s2_1_async_send",
    "s2_2_async_send_callback",
    "s3_sync_send",
    "s4_2_explicit_partition",
    "s4_2_key_partition",
    "s4_3_custom_partitioner",
    "s5_throughput",
    "s6_acks",
    "s7_idempotence",
    "s8_transaction",
)
ARTICLE_SCENARIOS = ("article-acks1-claim", "article-sync-claim", "no-key-partitioning")
BOOTSTRAP = ["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]


def load_example(name: str) -> ModuleType:
    """Import examples/NAME.py as a fresh module."""
    spec = importlib.util.spec_from_file_location(
        f"article_example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run an example's main() and return what it printed."""
    load_example(name).main()
    return capsys.readouterr().out


def landed(msg: str, partition: int, offset: int) -> str:
    """The article's report of one sent message (its f-string, then print's newline)."""
    return f"消息: {msg}\n所在的分区: {partition}\n偏移量为: {offset}\n\n"


def new_cluster() -> sim.Cluster:
    """The examples' cluster: 3 brokers, topic "first" with 3 partitions, RF 3."""
    cluster = sim.Cluster(brokers=3, seed=7)
    cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


# --- the examples ---------------------------------------------------------------------


def test_every_article_example_is_a_script_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for name in ARTICLE_EXAMPLES:
        assert (EXAMPLES / f"{name}.py").is_file(), name
        assert f"`{name}.py`" in readme, name
        module = load_example(name)
        assert callable(module.main), name
        assert "from sim import KafkaProducer" in (EXAMPLES / f"{name}.py").read_text(), name
    for name in ARTICLE_SCENARIOS:
        assert f"scenarios/{name}.toml" in readme, name


def test_async_send(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s2_1_async_send", capsys)
    assert out == "开始生产数据......\n" + landed("this is profucer01", 0, 0)


def test_async_send_with_callback_and_errback(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s2_2_async_send_callback", capsys)
    started = "开始生产数据......\n"
    callback = "消息成功发送到主题: first\n分区: 0\n偏移量: {}\n"
    assert out == (
        started
        + callback.format(0)
        + started  # one NOT_ENOUGH_REPLICAS answer: retried by the producer, then acknowledged
        + callback.format(1)
        + started  # TOPIC_AUTHORIZATION_FAILED is not retriable: the errback runs
        + "发送消息时出现错误: [Error 29] TopicAuthorizationFailedError\n"
    )


def test_callbacks_get_record_metadata_and_errbacks_the_exception() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(bootstrap_servers=BOOTSTRAP)
    successes: list[Any] = []
    failures: list[Any] = []
    producer.send(topic="first", value=b"ok", partition=0).add_callback(
        successes.append
    ).add_errback(failures.append)
    producer.flush()
    cluster.error("leader:first/0", "ProduceRequest", "TOPIC_AUTHORIZATION_FAILED", count=1)
    producer.send(topic="first", value=b"denied", partition=0).add_callback(
        successes.append
    ).add_errback(failures.append)
    producer.close()
    assert len(successes) == 1 and isinstance(successes[0], sim.RecordMetadata)
    assert (successes[0].topic, successes[0].partition, successes[0].offset) == ("first", 0, 0)
    assert len(failures) == 1
    assert isinstance(failures[0], sim.errors.TopicAuthorizationFailedError)


def test_sync_send_returns_offsets_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s3_sync_send", capsys)
    started = "开始生产数据......\n"
    assert out == "".join(started + landed(f"this is profucer0{i}", 0, i - 1) for i in (1, 2, 3))


def test_explicit_partition(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s4_2_explicit_partition", capsys)
    assert out == "".join(landed(f"this is partition{i}", 0, i) for i in range(5))


def test_key_partition_is_murmur2_of_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    # Kafka's formula, computed with kafka-python's murmur2 (not the simulator's).
    expected = (kafka_python_murmur2(b"a") & 0x7FFFFFFF) % 3
    assert expected == 1
    out = run_example("s4_2_key_partition", capsys)
    assert out == "".join(landed(f"this is partition{i}", expected, i) for i in range(5))


def test_hello_partitioner(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s4_3_custom_partitioner", capsys)
    hello, other = "hello this is partition", "this is partition"
    assert out == (
        landed(hello, 0, 0) + landed(other, 1, 0) + landed(hello, 0, 1) + landed(other, 1, 1)
    )


def test_hello_partitioner_routes_by_value(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("s4_3_custom_partitioner")
    example.create_cluster()
    values = ["say hello", "goodbye", "hello", "HELLO", "othello", "x"]
    for value in values:
        example.producer_03("first", value)
    out = capsys.readouterr().out
    # "HELLO" has no lower-case "hello"; "othello" has.
    partitions = [0, 1, 0, 1, 0, 1]
    offsets = [0, 0, 1, 1, 2, 2]
    assert out == "".join(map(landed, values, partitions, offsets))


def test_throughput_settings(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s5_throughput", capsys)
    # No key: kafka-python's random partitioner, seeded, so always these partitions.
    placed = ((1, 0), (2, 0), (2, 1))  # (partition, offset) of each record
    assert out == "".join(
        landed(f"this is throughput{i}", partition, offset)
        for i, (partition, offset) in enumerate(placed)
    )


def test_throughput_settings_are_taken() -> None:
    new_cluster()
    producer = sim.KafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        batch_size=16 * 1024,
        linger_ms=5,
        compression_type="snappy",
        buffer_memory=64 * 1024 * 1024,
    )
    settings = producer.config.as_dict()
    assert settings["compression_type"] == "snappy"
    assert (settings["batch_size"], settings["linger_ms"]) == (16384, 5)
    assert settings["buffer_memory"] == 67108864
    producer.close()


def test_acks_settings(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s6_acks", capsys)
    assert out == (
        "acks=0\n"
        + landed("this is acks 0", 0, -1)  # acks=0: success at once, offset unknown
        + "acks=1\n"
        + landed("this is acks 1", 0, 1)  # the acks=0 record is at offset 0 all the same
        + "acks='all'\n"
        + landed("this is acks all", 0, 2)
    )


def test_idempotence(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("s7_idempotence", capsys)
    assert out == "".join(landed(f"this is idempotence{i}", 0, i) for i in range(3))


KAFKA_PYTHON_INIT_TRANSACTIONS_ERRORS = {
    # kafka-python 3.0.12: with idempotence on, a TransactionManager exists and its
    # _ensure_transactional() raises; without it, KafkaProducer.init_transactions does.
    True: "Transactional method invoked on a non-transactional producer.",
    False: "Cannot call init_transactions without setting a transactional_id.",
}


def _require_init_transactions() -> None:
    assert hasattr(sim.KafkaProducer, "init_transactions"), (
        "engine gap: sim.KafkaProducer has no init_transactions() yet (the transactions issue "
        "adds it). Without a transactional_id it must raise sim.errors.IllegalStateError with "
        f"kafka-python 3.0.12's messages: {KAFKA_PYTHON_INIT_TRANSACTIONS_ERRORS}"
    )


def test_article_transaction_example_fails_as_in_kafka_python(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _require_init_transactions()
    with pytest.raises(IllegalStateError) as raised:
        load_example("s8_transaction").main()
    assert type(raised.value) is IllegalStateError
    assert str(raised.value) == f"IllegalStateError: {KAFKA_PYTHON_INIT_TRANSACTIONS_ERRORS[True]}"
    assert capsys.readouterr().out == ""  # it fails before sending or printing anything


@pytest.mark.parametrize("enable_idempotence", [True, False])
def test_init_transactions_without_transactional_id_matches_kafka_python(
    enable_idempotence: bool,
) -> None:
    from kafka import KafkaProducer as RealKafkaProducer
    from kafka.errors import IllegalStateError as RealIllegalStateError

    # kafka-python itself, with no broker: api_version is given, so nothing connects first.
    real = RealKafkaProducer(
        bootstrap_servers="127.0.0.1:9092",
        api_version=(3, 9),
        enable_idempotence=enable_idempotence,
    )
    try:
        with pytest.raises(RealIllegalStateError) as real_error:
            real.init_transactions()
    finally:
        real.close(timeout=0)
    expected = KAFKA_PYTHON_INIT_TRANSACTIONS_ERRORS[enable_idempotence]
    assert str(real_error.value) == f"IllegalStateError: {expected}"

    _require_init_transactions()
    new_cluster()
    producer = sim.KafkaProducer(
        bootstrap_servers="127.0.0.1:9092", enable_idempotence=enable_idempotence
    )
    with pytest.raises(IllegalStateError) as sim_error:
        producer.init_transactions()
    assert str(sim_error.value) == str(real_error.value)
    producer.close()


# --- "acks='all' makes send synchronous" (article §3): it does not ----------------------------


def test_send_with_acks_all_returns_before_the_broker_answers() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    producer.partitions_for("first")  # metadata: the one thing a first send() may wait for
    before = cluster.world.now_ms
    future = producer.send("first", value=b"this is acks all", partition=0)
    assert not future.is_done, "send() waited for the broker"
    assert cluster.world.now_ms == before, "simulated time advanced inside send()"
    metadata = future.get(timeout=10)  # only get() waits
    assert future.is_done and future.succeeded()
    assert (metadata.partition, metadata.offset) == (0, 0)
    assert cluster.world.now_ms > before
    producer.close()


def test_send_with_acks_all_keeps_accepting_while_nothing_can_be_acknowledged() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    producer.send("first", value=b"warm-up", partition=0).get(timeout=10)
    # The leader of first/0 loses its followers: the high watermark cannot move.
    cluster.partition(isolate="leader:first/0", from_="followers:first/0")
    before = cluster.world.now_ms
    futures = [producer.send("first", value=b"v%d" % i, partition=0) for i in range(100)]
    assert cluster.world.now_ms == before
    assert not any(f.is_done for f in futures)
    with pytest.raises(KafkaTimeoutError):
        futures[0].get(timeout=5)  # five simulated seconds: still no answer
    assert not any(f.is_done for f in futures)
    cluster.heal()
    assert futures[-1].get(timeout=60).offset == 100
    assert [f.get(timeout=0).offset for f in futures] == list(range(1, 101))
    producer.close()


# --- the scenarios ----------------------------------------------------------------------------


def run_with_trace(
    path: Path, overrides: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> tuple[RunResult, list[TraceEvent]]:
    """`run_scenario`, keeping the cluster it builds so the trace can be read."""
    built: list[sim.Cluster] = []
    original = runner.build_cluster

    def build_and_keep(scenario: Any, seed: int) -> sim.Cluster:
        cluster = original(scenario, seed)
        built.append(cluster)
        return cluster

    monkeypatch.setattr(runner, "build_cluster", build_and_keep)
    result = runner.run_scenario(load_scenario(path, overrides), seed=0)
    assert len(built) == 1
    return result, built[0].world.events


def produce_batches(events: list[TraceEvent]) -> tuple[Counter[int], Counter[int]]:
    """Per partition: how many produce batches the leaders appended, and how many records."""
    batches: Counter[int] = Counter()
    records: Counter[int] = Counter()
    for event in events:
        if event.kind == "broker.append":
            batches[event.field("partition")] += 1
            records[event.field("partition")] += event.field("count")
    return batches, records


def test_no_key_random_spreads_records_and_sticky_fills_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = SCENARIOS / "no-key-partitioning.toml"
    random_result, random_events = run_with_trace(path, (), monkeypatch)
    sticky_result, sticky_events = run_with_trace(
        path, ("producer.partitioner='sticky'",), monkeypatch
    )
    assert random_result.config["producer"]["partitioner"] == "default"
    assert sticky_result.config["producer"]["partitioner"] == "sticky"
    for result in (random_result, sticky_result):
        assert result.expect_holds, result.expect
    random_batches, random_records = produce_batches(random_events)
    sticky_batches, sticky_records = produce_batches(sticky_events)
    records = 6000
    assert sum(random_records.values()) == sum(sticky_records.values()) == records

    # Random: every partition gets about a third of the records, in many small batches.
    assert sorted(random_records) == [0, 1, 2]
    for partition in range(3):
        assert abs(random_records[partition] - records / 3) < 0.1 * records / 3, random_records
    # Sticky: it still moves between partitions, but each batch is fuller.
    assert sorted(sticky_records) == [0, 1, 2]
    random_total, sticky_total = sum(random_batches.values()), sum(sticky_batches.values())
    assert random_total >= 2 * sticky_total, (random_batches, sticky_batches)
    assert records / sticky_total >= 2 * (records / random_total)
    for partition in range(3):
        assert random_batches[partition] > sticky_batches[partition], (
            random_batches,
            sticky_batches,
        )


def test_article_acks1_claim_loses_acknowledged_records() -> None:
    result = runner.run_scenario(load_scenario(SCENARIOS / "article-acks1-claim.toml"), seed=0)
    assert result.config["producer"]["acks"] == 1
    topic = result.config["topics"][0]
    assert (topic["replication_factor"], topic["min_insync_replicas"]) == (2, 2)
    assert result.counts["lost"] > 0
    witness = result.witnesses["lost"][0]
    assert witness["records"][0]["status"] == "ok"
    assert "elected leader" in witness["explanation"] and "clean" in witness["explanation"]


def test_article_sync_claim_sends_everything_while_acknowledging_little() -> None:
    result = runner.run_scenario(load_scenario(SCENARIOS / "article-sync-claim.toml"), seed=0)
    counts = result.counts
    assert counts["sent"] == 1000
    assert counts["acked"] <= 100
    assert counts["sent"] - counts["acked"] > 800  # accepted by send(), never acknowledged
    assert counts["lost"] == 0


def lesson_commands(name: str) -> list[list[str]]:
    """The `kpsim run ...` commands a scenario's lesson tells the reader to try."""
    lesson = tomllib.loads((SCENARIOS / f"{name}.toml").read_text())["lesson"]
    commands = []
    for line in lesson.splitlines():
        if "kpsim run" in line:
            argv = shlex.split(line[line.index("kpsim run") :])
            commands.append(argv[1:])
    return commands


@pytest.mark.parametrize("name", ARTICLE_SCENARIOS)
def test_scenario_and_its_lesson_commands_exit_0(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    commands = [["run", f"scenarios/{name}.toml"], *lesson_commands(name)]
    assert len(commands) >= 2, f"{name}: its lesson names no variant to try"
    for argv in commands:
        assert kpsim(argv) == 0, (argv, capsys.readouterr().out[-2000:])


def test_article_transaction_example_with_a_transactional_id_commits_atomically(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_example("s8_transaction_working").main()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "coordinator partition of 'my-txn-1': 49"
    assert out[1] == "read_committed:   [b'my_value_0', b'my_value_1', b'my_value_2']"
    assert "b'aborted_0'" in out[2] and "b'my_value_2'" in out[2]
