"""Article §8 使用事务 — the article's transaction example, as written. It fails.

The article's producer sets `enable_idempotence=True` but never a
`transactional_id`, so it is not a transactional producer and
`init_transactions()` raises before anything is sent — outside the article's
try/except, so the script dies with the traceback. kafka-python 3.0.12 raises

    kafka.errors.IllegalStateError: IllegalStateError: Transactional method
    invoked on a non-transactional producer.

(with idempotence off it would say "Cannot call init_transactions without
setting a transactional_id."). The simulated producer must fail the same way,
with `sim.errors.IllegalStateError` and the same message: `main()` lets the
error propagate, as the article's code does. The fix is one keyword:
`KafkaProducer(..., transactional_id="my-txn-1")` (which implies idempotence);
the article itself says a transaction needs a unique transactional.id first.

Run: python examples/s8_transaction.py   (exits with the IllegalStateError)
"""

from __future__ import annotations

import sim
from sim import KafkaProducer
from sim.errors import KafkaError

SEED = 7


def create_cluster() -> sim.Cluster:
    """The simulated cluster; the article's transaction example writes to "my_topic"."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("my_topic", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


def transaction_producer() -> None:
    """The article's transaction example, verbatim but for the import.

    Raises:
        IllegalStateError: from `init_transactions()`: no transactional_id is set.
    """
    # 创建 KafkaProducer 实例,开启事务 (create the producer, "with transactions on")
    producer = KafkaProducer(
        bootstrap_servers="127.0.0.1:9092",
        enable_idempotence=True,  # 开启幂等性
    )
    # 初始化事务 (initialise transactions) -- raises: no transactional_id
    producer.init_transactions()
    # 开始事务 (begin the transaction)
    producer.begin_transaction()
    try:
        # 发送事务性消息 (send the transaction's messages)
        for i in range(3):
            key = b"my_key"
            value = b"my_value_%d" % i
            producer.send("my_topic", key=key, value=value)
        # 提交事务 (commit)
        producer.commit_transaction()
    except KafkaError as e:
        # 回滚事务 (abort)
        producer.abort_transaction()
        print(f"发送消息失败: {e}")
    finally:
        # 关闭 KafkaProducer 实例 (close the producer)
        producer.close()


def main() -> None:
    """Run the article's transaction example; it raises IllegalStateError, as in kafka-python."""
    create_cluster()
    transaction_producer()


if __name__ == "__main__":
    main()
