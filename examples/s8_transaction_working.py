"""Article §8 使用事务 — the transaction example in its working form.

The article's example (s8_transaction.py) never sets a `transactional_id`, so
`init_transactions()` fails. With one — the article itself says a transaction
needs a unique transactional.id — the same code works: the coordinator of
"my-txn-1" is the leader of `__transaction_state` partition
abs(String.hashCode("my-txn-1")) % 50, the three records are committed
atomically, and a read_committed consumer sees them. A second transaction is
aborted on purpose: its records are in the log, but only a read_uncommitted
consumer sees them.

Run: python examples/s8_transaction_working.py
"""

from __future__ import annotations

import sim
from sim import KafkaProducer
from sim.client.consumer import KafkaConsumer, TopicPartition
from sim.cluster.txn_coordinator import partition_for
from sim.errors import KafkaError

SEED = 7
TRANSACTIONAL_ID = "my-txn-1"


def create_cluster() -> sim.Cluster:
    """The simulated cluster; the article's transaction example writes to "my_topic"."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("my_topic", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


def transaction_producer(abort: bool = False) -> None:
    """The article's code with a transactional_id; `abort` rolls the transaction back."""
    producer = KafkaProducer(
        bootstrap_servers="127.0.0.1:9092",
        enable_idempotence=True,  # 开启幂等性
        transactional_id=TRANSACTIONAL_ID,  # the one missing keyword
    )
    producer.init_transactions()
    producer.begin_transaction()
    try:
        for i in range(3):
            key = b"my_key"
            value = (b"aborted_%d" if abort else b"my_value_%d") % i
            producer.send("my_topic", key=key, value=value)
        if abort:
            producer.flush()  # The records reach the log, then the transaction is aborted.
            producer.abort_transaction()
        else:
            producer.commit_transaction()
    except KafkaError as e:
        producer.abort_transaction()
        print(f"发送消息失败: {e}")
    finally:
        producer.close()


def read_all(isolation_level: str) -> list[bytes]:
    """Every value in my_topic as a consumer with this isolation level sees it."""
    consumer = KafkaConsumer(isolation_level=isolation_level, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("my_topic", p) for p in range(3)])
    values: list[bytes] = []
    for records in consumer.poll(timeout_ms=2000).values():
        values.extend(r.value for r in records)
    return sorted(values)


def main() -> None:
    create_cluster()
    print(f"coordinator partition of {TRANSACTIONAL_ID!r}: {partition_for(TRANSACTIONAL_ID, 50)}")
    transaction_producer()
    transaction_producer(abort=True)
    print("read_committed:  ", read_all("read_committed"))
    print("read_uncommitted:", read_all("read_uncommitted"))


if __name__ == "__main__":
    main()
