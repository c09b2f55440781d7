"""Article §4.2 示例1 — send every record to an explicit partition (0).

An explicit `partition=` wins over any partitioner: all five records land in
partition 0, at offsets 0..4.

Run: python examples/s4_2_explicit_partition.py
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


# 指定分区 (explicit partition)
def producer_01(topic: str, msg: str, partition: int = 0) -> None:
    """
    :function: 指定分区 (explicit partition)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param partition: 写入数据所在的分区 (the partition to write to)
    :return:
    """
    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    future = producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=partition)
    try:
        # 等待消息发送完成 (wait until the message is sent)
        sendResult = future.get(timeout=10)  # the article's camelCase name
        print(f"消息: {msg}\n所在的分区: {sendResult.partition}\n偏移量为: {sendResult.offset}\n")
        # 关闭生产 (close the producer)
        producer.close()
    except KafkaError as e:
        print(f"消息: {msg} 发送失败\n失败信息为: {e}\n")


def main() -> None:
    """The article's loop: five records to partition 0."""
    create_cluster()
    msg = "this is partition"
    topic = "first"
    for i in range(5):
        producer_01(topic, msg + str(i))


if __name__ == "__main__":
    main()
