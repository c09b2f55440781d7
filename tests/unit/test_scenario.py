"""Scenario files: the contract of DESIGN.md, and an error naming file and key for each misuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.client.config import ProducerConfig
from sim.errors import KafkaConfigurationError
from sim.scenario import (
    ClusterSpec,
    Expectation,
    FaultSpec,
    ScenarioError,
    TopicSpec,
    WorkloadSpec,
    load_scenario,
    parse_scenario,
)

FILES = Path(__file__).parent / "scenario_files"
SOURCE = "scenarios/test.toml"


def toml(
    top: str = "",
    cluster: str = "",
    topic: str = "",
    producer: str = "",
    workload: str = "",
    faults: str = "",
    expect: str = "",
) -> str:
    """A minimal valid scenario, with extra lines inserted into each section."""
    return f"""
name = "test"
description = "a test scenario"
{top}

[cluster]
brokers = 3
{cluster}

[[topics]]
name = "orders"
partitions = 2
replication_factor = 3
{topic}

[producer]
{producer}

[workload]
topic = "orders"
{workload}

{faults}

[expect]
{expect}
"""


def parse(text: str | None = None, *overrides: str):
    return parse_scenario(toml() if text is None else text, SOURCE, overrides)


def fails(text: str | None = None, *overrides: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse(text, *overrides)
    return info.value


def assert_names(error: ScenarioError, key: str, *fragments: str) -> None:
    """The message names the file and the key (or the override that set it)."""
    message = str(error)
    assert error.source == SOURCE
    assert error.key == key
    assert message.startswith(f"{SOURCE}: "), message
    assert key in message or "--set " in message, message
    for fragment in fragments:
        assert fragment in message, message


def fault(kind: str, at_ms: float = 100, **lines: str) -> str:
    body = "".join(f"{key} = {value}\n" for key, value in lines.items())
    return f'[[faults]]\nat_ms = {at_ms}\nkind = "{kind}"\n{body}'


# --- The DESIGN.md example ------------------------------------------------------


def test_design_example_loads_into_the_dataclasses():
    scenario = load_scenario(FILES / "full.toml")
    assert scenario.name == "acks1-leader-crash"
    assert scenario.lesson == "Longer teaching text shown by `kpsim explain`."
    assert scenario.cluster == ClusterSpec(brokers=3, min_insync_replicas=1)
    assert scenario.topics == (
        TopicSpec(name="orders", partitions=1, replication_factor=3, min_insync_replicas=2),
    )
    assert scenario.topics[0].effective_min_insync(scenario.cluster) == 2
    assert scenario.producer.acks == -1
    assert scenario.producer.enable_idempotence is True
    assert scenario.producer_raw["acks"] == "all"
    assert scenario.workload == WorkloadSpec(topic="orders")
    assert scenario.faults == (
        FaultSpec(
            at_ms=500,
            kind="partition",
            params={
                "isolate": "leader:orders/0",
                "from": ("followers:orders/0",),
                "groups": None,
                "one_way": False,
                "duration_ms": 5000,
            },
        ),
    )
    assert scenario.expect == (Expectation("lost", ">", 0), Expectation("duplicated", "==", 0))
    assert scenario.source == str(FILES / "full.toml")
    assert scenario.overrides == ()
    assert scenario.warnings == ()


def test_effective_config_is_json_with_defaults_filled_in():
    scenario = load_scenario(FILES / "full.toml")
    config = json.loads(json.dumps(scenario.effective_config()))
    assert set(config) == {"cluster", "topics", "producer", "workload", "faults"}
    assert config["cluster"]["flush_interval_ms"] == 30000
    assert config["topics"][0]["min_insync_replicas"] == 2
    assert config["producer"]["acks"] == -1
    assert config["faults"][0]["from"] == ["followers:orders/0"]
    assert config["faults"][0]["kind"] == "partition"


def test_minimal_scenario_takes_the_defaults():
    scenario = parse()
    assert scenario.cluster == ClusterSpec()
    assert scenario.topics[0].effective_min_insync(scenario.cluster) == 1
    assert scenario.workload.records == 1000
    assert scenario.workload.key_cycle is None
    assert scenario.faults == () and scenario.expect == () and scenario.lesson is None


# --- Reading the file -----------------------------------------------------------


def test_missing_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: cannot read scenario file")


def test_malformed_toml_names_file_and_line():
    error = fails('name = "x"\ndescription = \n')
    assert str(error).startswith(f"{SOURCE}: line 2, column"), str(error)
    assert "invalid TOML" in str(error)


# --- Unknown keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        (toml(top='descripton = "x"'), "descripton", "did you mean 'description'"),
        (toml(cluster="brokerz = 3"), "cluster.brokerz", "did you mean 'brokers'"),
        (toml(topic="partitons = 2"), "topics[0].partitons", "did you mean 'partitions'"),
        (toml(workload="record = 5"), "workload.record", "did you mean 'records'"),
        (toml(expect="loss = 0"), "expect.loss", "did you mean 'lost'"),
        (toml(producer="lingr_ms = 5"), "producer.lingr_ms", "did you mean 'linger_ms'"),
        (
            toml(faults=fault("crash", target='"broker-0"', targte='"x"')),
            "faults[0].targte",
            "did you mean 'target'",
        ),
    ],
)
def test_unknown_key_is_named_with_a_suggestion(text, key, hint):
    assert_names(fails(text), key, "unknown key", hint)


def test_heal_and_restart_take_no_duration():
    error = fails(toml(faults=fault("heal", duration_ms="5")))
    assert_names(error, "faults[0].duration_ms", "cannot be undone")


def test_key_of_another_fault_kind_is_unknown_for_this_kind():
    error = fails(toml(faults=fault("crash", target='"broker-0"', count="1")))
    assert_names(error, "faults[0].count", "crash takes")


# --- Types, ranges, enums, required keys ----------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (toml().replace("brokers = 3", "brokers = true"), "cluster.brokers", "expected an integer, got true"),
        (toml(workload='records = "10"'), "workload.records", 'expected an integer, got "10"'),
        (toml().replace("partitions = 2", "partitions = 1.5"), "topics[0].partitions", "integer"),
        (toml(workload='topic = ["orders"]').replace('topic = "orders"\n', "", 1), "workload.topic", "expected a string, got a list"),
        (toml(cluster="latency_ms = true"), "cluster.latency_ms", "expected a number"),
        (toml(cluster="latency_ms = -1"), "cluster.latency_ms", ">= 0"),
        (toml(cluster="replica_lag_time_max_ms = 0"), "cluster.replica_lag_time_max_ms", "> 0"),
        (toml(workload="settle_ms = nan"), "workload.settle_ms", "finite"),
        (toml().replace("brokers = 3", "brokers = 0"), "cluster.brokers", ">= 1"),
        (toml(cluster="unclean_leader_election_enable = 1"), "cluster.unclean_leader_election_enable", "true or false"),
        (toml(topic="min_insync_replicas = 0"), "topics[0].min_insync_replicas", ">= 1"),
        (toml(producer="acks = 2"), "producer.acks", 'expected 0, 1, -1 or "all", got 2'),
        (toml(producer='acks = "1"'), "producer.acks", 'got "1"'),
        (toml(producer="acks = true"), "producer.acks", "got true"),
        (toml(producer='partitioner = "fancy"'), "producer.partitioner", "sticky"),
        (toml(producer='enable_idempotence = "yes"'), "producer.enable_idempotence", "true or false"),
        (toml(workload='keys = "weird"'), "workload.keys", '"cycle:N"'),
        (toml(workload='keys = "cycle:0"'), "workload.keys", "cycle:N"),
        (toml(top='lesson = 3'), "lesson", "expected a string"),
        (toml().replace('name = "test"', 'name = "Bad_Name"'), "name", "[a-z0-9-]+"),
    ],
)  # fmt: skip
def test_bad_value_is_named(text, key, fragment):
    assert_names(fails(text), key, fragment)


def test_acks_error_matches_the_contract_text_exactly():
    assert str(fails(toml(producer="acks = 2"))) == (
        f'{SOURCE}: producer.acks: expected 0, 1, -1 or "all", got 2'
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (toml().replace('name = "test"', ""), "name"),
        (toml().replace('description = "a test scenario"', ""), "description"),
        (toml().replace('topic = "orders"', ""), "workload.topic"),
        (toml().replace('[[topics]]\nname = "orders"\npartitions = 2\nreplication_factor = 3', ""), "topics"),
        (toml().replace("[workload]\ntopic = \"orders\"", ""), "workload"),
        (toml().replace('name = "orders"', ""), "topics[0].name"),
    ],
)  # fmt: skip
def test_missing_required_key_is_named(text, key):
    assert_names(fails(text), key, "required")


def test_wrong_section_shape_is_named():
    text = toml().replace("[workload]", "[[workload]]")
    assert_names(fails(text), "workload", "expected a table, got a list")


def test_workload_topic_must_be_declared():
    text = toml().replace('topic = "orders"', 'topic = "order"')
    assert_names(fails(text), "workload.topic", "no such topic 'order'", "did you mean 'orders'")


def test_transaction_keys_need_a_transactional_id():
    assert_names(fails(toml(workload="txn_size = 10")), "workload.txn_size", "transactional_id")
    scenario = parse(
        toml(producer='transactional_id = "tx-1"', workload="txn_size = 10\nabort_every = 3")
    )
    assert (scenario.workload.txn_size, scenario.workload.abort_every) == (10, 3)
    assert scenario.producer.transactional_id == "tx-1"


def test_keys_cycle_gives_the_number_of_keys():
    assert parse(toml(workload='keys = "cycle:7"')).workload.key_cycle == 7


# --- Topics ---------------------------------------------------------------------


def test_replication_factor_above_brokers_gives_kafkas_reason():
    text = toml().replace("replication_factor = 3", "replication_factor = 4")
    error = fails(text)
    assert_names(error, "topics[0].replication_factor")
    assert "Replication factor: 4 larger than available brokers: 3." in str(error)


def test_min_insync_above_replication_factor_is_a_warning_not_an_error():
    scenario = parse(toml(topic="min_insync_replicas = 4"))
    assert scenario.topics[0].effective_min_insync(scenario.cluster) == 4
    assert any("min_insync_replicas=4 > replication_factor=3" in w for w in scenario.warnings)


def test_duplicate_topic_name_is_an_error():
    text = toml(topic='[[topics]]\nname = "orders"')
    assert_names(fails(text), "topics[1].name", "declared twice")


def test_replica_fetch_wait_above_lag_time_gives_kafkas_reason():
    text = toml(cluster="replica_fetch_wait_max_ms = 40000")
    assert_names(fails(text), "cluster.replica_fetch_wait_max_ms", "replica.lag.time.max.ms")


# --- Producer config (Kafka's rules via ProducerConfig) -------------------------


def kafka_reason(**kwargs: object) -> str:
    """What ProducerConfig says about these keywords (the message must quote it)."""
    with pytest.raises(KafkaConfigurationError) as info:
        ProducerConfig.from_kwargs(**kwargs)
    return str(info.value.args[0])


def test_explicit_idempotence_with_six_in_flight_names_the_in_flight_key():
    text = toml(producer="enable_idempotence = true\nmax_in_flight_requests_per_connection = 6")
    reason = kafka_reason(enable_idempotence=True, max_in_flight_requests_per_connection=6)
    error = fails(text)
    assert_names(error, "producer.max_in_flight_requests_per_connection", reason)
    assert str(error) == f"{SOURCE}: producer.max_in_flight_requests_per_connection: {reason}"


def test_explicit_idempotence_with_acks_1_names_acks():
    reason = kafka_reason(enable_idempotence=True, acks=1)
    assert_names(
        fails(toml(producer="enable_idempotence = true\nacks = 1")), "producer.acks", reason
    )


def test_default_idempotence_with_acks_1_is_disabled_with_a_warning():
    scenario = parse(toml(producer="acks = 1"))
    assert scenario.producer.enable_idempotence is False
    assert scenario.producer.acks == 1
    assert any(w.startswith("producer: ") and "dempotence" in w for w in scenario.warnings)


def test_toml_forms_of_producer_values_are_accepted():
    scenario = parse(toml(producer='partitioner = "default"\ncompression_type = "none"'))
    assert scenario.producer_raw == {"partitioner": "default", "compression_type": None}
    assert scenario.producer.compression_type is None
    assert parse(toml(producer='partitioner = "sticky"')).producer.partitioner == "sticky"


def test_transactional_id_without_idempotence_names_the_transactional_id():
    error = fails(toml(producer='enable_idempotence = false\ntransactional_id = "tx"'))
    assert_names(error, "producer.transactional_id", "transactional_id")


def test_delivery_timeout_below_linger_plus_request_timeout_names_delivery_timeout():
    error = fails(toml(producer="delivery_timeout_ms = 1000\nlinger_ms = 5000"))
    assert_names(error, "producer.delivery_timeout_ms", "linger_ms")


def test_serializers_cannot_be_set_in_toml():
    error = fails(toml(producer='key_serializer = "str"'))
    assert_names(error, "producer.key_serializer", "Python code")


# --- Faults ---------------------------------------------------------------------


def test_every_fault_kind_parses_with_its_params():
    faults = "\n".join(
        [
            fault("crash", 10, target='"leader:orders/1"', lose_unflushed="true", duration_ms="50"),
            fault("restart", 20, target='"crashed"'),
            fault("partition", 30, groups='[["broker-0"], ["broker-1", "producer-0"]]'),
            fault("heal", 40),
            fault("drop", 50, to='"producer-0"', message='"ProduceResponse"', count="2")
            + 'from = "any-broker"\n',
            fault("error", 60, target='"broker-2"', message='"ProduceRequest"',
                  error='"NOT_ENOUGH_REPLICAS_AFTER_APPEND"'),
            fault("delay", 70, to='["broker-0", "controller"]', extra_ms="5") + 'from = "producer-0"\n',
            fault("pause", 80, target='"followers:orders/0"'),
        ]
    )  # fmt: skip
    scenario = parse(toml(faults=faults))
    by_kind = {f.kind: f.params for f in scenario.faults}
    assert by_kind["crash"] == {
        "target": "leader:orders/1",
        "lose_unflushed": True,
        "duration_ms": 50,
    }
    assert by_kind["restart"] == {"target": "crashed"}
    assert by_kind["partition"]["groups"] == (("broker-0",), ("broker-1", "producer-0"))
    assert by_kind["heal"] == {}
    assert by_kind["drop"] == {
        "from": ("any-broker",), "to": ("producer-0",), "message": "ProduceResponse",
        "count": 2, "probability": None, "duration_ms": None,
    }  # fmt: skip
    assert by_kind["error"]["count"] == 1
    assert by_kind["delay"]["to"] == ("broker-0", "controller")
    assert by_kind["pause"] == {"target": "followers:orders/0", "duration_ms": None}


def test_faults_are_sorted_by_time_and_stable_for_equal_times():
    faults = "\n".join(
        [
            fault("heal", 300),
            fault("crash", 100, target='"broker-0"'),
            fault("crash", 100, target='"broker-1"'),
        ]
    )
    scenario = parse(toml(faults=faults))
    assert [(f.at_ms, f.params.get("target")) for f in scenario.faults] == [
        (100, "broker-0"),
        (100, "broker-1"),
        (300, None),
    ]


@pytest.mark.parametrize(
    ("faults", "key", "fragment"),
    [
        (fault("explode"), "faults[0].kind", "expected one of crash"),
        (fault("crsh", target='"broker-0"'), "faults[0].kind", "did you mean 'crash'"),
        (fault("crash", target='"broker-7"'), "faults[0].target",
         "no such node 'broker-7' (the cluster has brokers 0..2)"),
        (fault("crash", target='"leader:nosuch/0"'), "faults[0].target", "no such topic 'nosuch'"),
        (fault("crash", target='"leader:orders/5"'), "faults[0].target", "no such partition orders/5"),
        (fault("pause", target='"producer-1"'), "faults[0].target", "producers 0..0"),
        (fault("pause", target='"brokr-1"'), "faults[0].target", "no such node"),
        (fault("crash", target='["broker-0"]'), "faults[0].target", "expected a node name"),
        (fault("crash", target='"crashed"'), "faults[0].target", "only a target of restart"),
        (fault("crash", target='"producer-0"', lose_unflushed="true"), "faults[0].lose_unflushed", "broker"),
        (fault("crash"), "faults[0].target", "required"),
        (fault("crash", at_ms=-1, target='"broker-0"'), "faults[0].at_ms", ">= 0"),
        (fault("error", target='"broker-0"', message='"ProduceRequest"', error='"NOT_ENOUGH_REPLICA"'),
         "faults[0].error", "did you mean 'NOT_ENOUGH_REPLICAS'"),
        (fault("error", target='"producer-0"', message='"ProduceRequest"', error='"NOT_ENOUGH_REPLICAS"'),
         "faults[0].target", "expected a broker"),
        (fault("error", target='"broker-0"', message='"ProduceResponse"', error='"NOT_ENOUGH_REPLICAS"'),
         "faults[0].message", "a request a broker answers"),
        (fault("drop", to='"broker-0"', message='"ProduceReq"', count="1") + 'from = "producer-0"\n',
         "faults[0].message", "did you mean 'ProduceRequest'"),
        (fault("drop", to='"broker-0"', message='"ProduceRequest"') + 'from = "producer-0"\n',
         "faults[0]", "exactly one of count or probability"),
        (fault("drop", to='"broker-0"', message='"ProduceRequest"', probability="1.5") + 'from = "producer-0"\n',
         "faults[0].probability", "<= 1"),
        (fault("delay", to='[]', extra_ms="5") + 'from = "producer-0"\n', "faults[0].to", "non-empty"),
        (fault("delay", to='["broker-0", "broker-9"]', extra_ms="5") + 'from = "producer-0"\n',
         "faults[0].to[1]", "no such node 'broker-9'"),
        (fault("partition", isolate='"broker-0"', groups='[["broker-1"], ["broker-2"]]'),
         "faults[0]", "either isolate"),
        (fault("partition", groups='[["broker-1"], ["broker-1"]]'), "faults[0].groups[1]", "more than one group"),
        (fault("partition", isolate='"broker-0"') + 'from = ["broker-0"]\n', "faults[0].from", "itself"),
        (fault("pause", target='"broker-0"', duration_ms="0"), "faults[0].duration_ms", "> 0"),
    ],
)  # fmt: skip
def test_bad_fault_is_named(faults, key, fragment):
    assert_names(fails(toml(faults=faults)), key, fragment)


def test_fault_errors_use_the_index_in_the_file_not_the_sorted_order():
    faults = fault("heal", 300) + "\n" + fault("crash", 100, target='"broker-9"')
    assert_names(fails(toml(faults=faults)), "faults[1].target", "broker-9")


# --- Expectations ---------------------------------------------------------------


def test_expectations_parse_every_form_in_file_order():
    text = toml(
        expect='lost = ">0"\nduplicated = 0\nreordered = "<=2"\nacked = ">= 10"\nfailed = "==0"'
    )
    expect = parse(text).expect
    assert [str(e) for e in expect] == [
        "lost > 0", "duplicated == 0", "reordered <= 2", "acked >= 10", "failed == 0",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "value", "true_for", "false_for"),
    [("==", 0, 0, 1), (">", 0, 1, 0), (">=", 2, 2, 1), ("<", 3, 2, 3), ("<=", 3, 3, 4)],
)
def test_expectation_holds(op, value, true_for, false_for):
    expectation = Expectation("lost", op, value)
    assert expectation.holds(true_for)
    assert not expectation.holds(false_for)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [('lost = "lots"', '">N"'), ("lost = true", "integer"), ("lost = -1", ">= 0"),
     ('lost = "0"', '">N"'), ('lost = "<0"', "never")],
)  # fmt: skip
def test_bad_expectation_is_named(line, fragment):
    assert_names(fails(toml(expect=line)), "expect.lost", fragment)


# --- Overrides ------------------------------------------------------------------


def test_overrides_of_each_path_form_apply_before_validation():
    faults = fault("crash", 100, target='"broker-0"') + "\n" + fault("heal", 200)
    scenario = parse(
        toml(faults=faults),
        "producer.acks=1",
        "cluster.unclean_leader_election_enable=true",
        "workload.records=10",
        "topics.orders.replication_factor=2",
        "topics[0].min_insync_replicas=2",
        "faults[1].at_ms=50",
        'expect.lost=">0"',
        "expect.duplicated=0",
    )
    assert scenario.producer.acks == 1
    assert scenario.cluster.unclean_leader_election_enable is True
    assert scenario.workload.records == 10
    assert scenario.topics[0].replication_factor == 2
    assert scenario.topics[0].min_insync_replicas == 2
    assert [f.kind for f in scenario.faults] == ["heal", "crash"]
    assert [str(e) for e in scenario.expect] == ["lost > 0", "duplicated == 0"]
    assert scenario.overrides[0] == "producer.acks=1"


def test_override_takes_bare_words_as_strings_and_creates_missing_tables():
    text = toml().replace("[expect]", "")
    scenario = parse(text, "producer.acks=all", "expect.lost=>=1", "workload.keys=cycle:3")
    assert scenario.producer_raw["acks"] == "all"
    assert scenario.expect == (Expectation("lost", ">=", 1),)
    assert scenario.workload.key_cycle == 3


def test_override_of_a_missing_list_entry_is_an_error():
    error = fails(toml(faults=fault("heal")), "faults[1].at_ms=5")
    assert_names(error, "faults[1].at_ms", "--set faults[1].at_ms=5", "faults has 1 entry, no [1]")


def test_overridden_value_is_validated_and_its_error_names_the_override():
    error = fails(None, "producer.acks=7")
    assert str(error) == f'{SOURCE}: --set producer.acks=7: expected 0, 1, -1 or "all", got 7'
    assert error.key == "producer.acks"
    error = fails(None, "topics.orders.replication_factor=4")
    assert_names(error, "topics[0].replication_factor", "--set topics.orders.replication_factor=4")


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("producer.acks", "producer.acks", "expected KEY=VALUE"),
        ("nosuch.x=1", "nosuch", "unknown key"),
        ("cluster.brokerz=3", "cluster.brokerz", "did you mean 'brokers'"),
        ("faults[5].at_ms=1", "faults[5].at_ms", "faults is not in the file"),
        ("topics.nosuch.partitions=2", "topics.nosuch.partitions", "no such topic 'nosuch'"),
        ("producer.linger_ms=hello world", "producer.linger_ms", "expected a TOML value"),
        ("producer[0].acks=1", "producer[0].acks", "not a list"),
        ("name.x=1", "name.x", "not a table"),
        ("producer..acks=1", "producer..acks", "dotted key"),
    ],
)
def test_bad_override_is_named(override, key, fragment):
    error = fails(None, override)
    assert_names(error, key, f"--set {override}", fragment)
