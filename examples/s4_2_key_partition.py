"""Article §4.2 示例2 — records with a key: partition = hash(key) % partitions.

With a key and no explicit partition, the partition is Kafka's
`toPositive(murmur2(key)) % partitions` (the Java client's formula, which
kafka-python reproduces byte for byte). Key "a" on a 3-partition topic goes
to partition 1, so the five records land there at offsets 0..4.

Run: python examples/s4_2_key_partition.py
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


# 没有指明 partition 值但有 key 的情况下,将 key 的 hash 值与 topic 的 partition 数进行取余得到 partition 值。
def producer_02(topic: str, msg: str, key: str) -> None:
    """
    :function: 指定分区 (partition chosen by key)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param key: 发送消息的key值 (the record's key)
    :return:
    """
    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    future = producer.send(topic=topic, key=bytes(key, "utf-8"), value=bytes(msg, "utf-8"))
    try:
        # 等待消息发送完成 (wait until the message is sent)
        sendResult = future.get(timeout=10)  # the article's camelCase name
        print(f"消息: {msg}\n所在的分区: {sendResult.partition}\n偏移量为: {sendResult.offset}\n")
        # 关闭生产 (close the producer)
        producer.close()
    except KafkaError as e:
        print(f"消息: {msg} 发送失败\n失败信息为: {e}\n")


def main() -> None:
    """The article's loop: five records with key "a"."""
    create_cluster()
    msg = "this is partition"
    topic = "first"
    key = "a"
    for i in range(5):
        producer_02(topic, msg + str(i), key)


if __name__ == "__main__":
    main()
