"""Article §7 幂等性 — an idempotent producer: `enable_idempotence=True`.

The broker keeps, per producer id and partition, the sequence numbers of the
last five batches (<PID, Partition, SeqNumber>) and writes a retried batch
only once. kafka-python 3.x enables idempotence by default (as Java does
since Kafka 3.0); the article's `acks="all", enable_idempotence=True` is the
explicit form. With acks 0 or 1, or more than 5 requests in flight, an
explicit `enable_idempotence=True` is a configuration error.

scenarios/no-idempotence-duplicates.toml shows what idempotence prevents: a
lost produce response, a retry, and the same record written twice.

Run: python examples/s7_idempotence.py
"""

from __future__ import annotations

import sim
from sim import KafkaProducer
from sim.errors import KafkaError

SEED = 7


def create_cluster() -> sim.Cluster:
    """The simulated cluster the producer attaches to (the most recently created one)."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


def idempotent_producer(topic: str, msgs: list[str]) -> None:
    """
    :function: 幂等性生产者 (an idempotent producer)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msgs: 写入的数据 (the data to write)
    :return:
    """
    # 创建 KafkaProducer 实例,开启幂等性 (create the producer with idempotence on)
    producer = KafkaProducer(
        bootstrap_servers="127.0.0.1:9092",
        acks="all",  # 设置 acks 参数为 "all",要求所有副本都确认消息
        enable_idempotence=True,
    )
    for msg in msgs:
        future = producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=0)
        try:
            sendResult = future.get(timeout=10)  # the article's camelCase name
            print(
                f"消息: {msg}\n所在的分区: {sendResult.partition}\n偏移量为: {sendResult.offset}\n"
            )
        except KafkaError as e:
            print(f"消息: {msg} 发送失败\n失败信息为: {e}\n")
    producer.close()


def main() -> None:
    """Three records from one idempotent producer to partition 0."""
    create_cluster()
    idempotent_producer("first", [f"this is idempotence{i}" for i in range(3)])


if __name__ == "__main__":
    main()
