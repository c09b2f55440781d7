"""Article §6 数据可靠性 — setting acks: 0, 1 or "all".

`KafkaProducer(..., acks=0)` as in the article, then 1 and "all", each
sending one record to partition 0 and waiting for it:
- acks=0: the producer does not wait for the broker; kafka-python reports
  success at once with offset -1 (the record is stored all the same, here at
  offset 0, but nobody confirmed it);
- acks=1: the leader answers after its own append (offset 1);
- acks="all": the leader answers once every in-sync replica has it (offset 2).

The article's conclusion that "acks 1 + replicas >= 2 + min ISR >= 2" is
fully reliable is wrong: min.insync.replicas applies only to acks="all"
(scenarios/article-acks1-claim.toml loses acknowledged records with exactly
that recipe). Setting acks 0 or 1 explicitly also switches idempotence off,
with a warning, as in kafka-python.

Run: python examples/s6_acks.py
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


def producer_acks(topic: str, msg: str, acks: int | str) -> None:
    """
    :function: 生产者,生产数据,设置 acks (produce with an acks setting)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param acks: acks取值:0、1、"all"
    :return:
    """
    # acks取值:0、1、"all"
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"],
        acks=acks,
    )
    future = producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=0)
    try:
        sendResult = future.get(timeout=10)  # the article's camelCase name
        print(f"acks={acks!r}")
        print(f"消息: {msg}\n所在的分区: {sendResult.partition}\n偏移量为: {sendResult.offset}\n")
        producer.close()
    except KafkaError as e:
        print(f"消息: {msg} 发送失败\n失败信息为: {e}\n")


def main() -> None:
    """One record with each acks setting; acks=0 reports offset -1."""
    create_cluster()
    topic = "first"
    for acks in (0, 1, "all"):
        producer_acks(topic, f"this is acks {acks}", acks)


if __name__ == "__main__":
    main()
