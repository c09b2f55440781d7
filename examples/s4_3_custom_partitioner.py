"""Article §4.3 自定义分区器 — a custom partitioner: values containing "hello" go to 0, others to 1.

The article computes the partition itself and passes it explicitly,
`send(..., partition=my_partitioner(msg))`: that is just an explicit partition
(§4.2 example 1), and the producer never sees a partitioner. A Kafka custom
partitioner is given to the producer, which calls it for every record sent
without an explicit partition. kafka-python's form is the `partitioner=`
keyword with an object whose `partition(topic, key, serialized_key, value,
serialized_value, cluster)` returns the partition; here it wraps the
article's `my_partitioner` unchanged. (kafka-python 3.x calls this 6-argument
form only on subclasses of `kafka.partitioner.Partitioner`; the simulator
recognises it by its signature. The older kafka-python 2.x / kafka3 form,
`partitioner(key_bytes, all_partitions, available_partitions)`, sees only the
key and cannot route by value.)

Run: python examples/s4_3_custom_partitioner.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sim
from sim import KafkaProducer
from sim.errors import KafkaError

SEED = 7


def create_cluster() -> sim.Cluster:
    """The simulated cluster the producer attaches to (the most recently created one)."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


class ValuePartitioner:
    """A kafka-python partitioner that routes each record by its value.

    Args:
        choose: maps a record's value to its partition (the article's `my_partitioner`).
    """

    def __init__(self, choose: Callable[[Any], int]) -> None:
        self.choose = choose

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """The partition of one record: `choose(value)`."""
        return self.choose(value)


# 自定义分区 发送过来的数据中如果包含 hello,就发往 0 号分区,不包含 hello,就发往 1 号分区。
def producer_03(topic: str, msg: str) -> None:
    """
    :function: 自定义分区 (custom partitioner)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :return:
    """

    # 自定义分区器 (the custom partitioner)
    def my_partitioner(msg: Any) -> int:
        if "hello" in str(msg):
            return 0
        else:
            return 1

    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"],
        partitioner=ValuePartitioner(my_partitioner),  # the article: partition=my_partitioner(msg)
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    future = producer.send(topic=topic, value=bytes(msg, "utf-8"))
    try:
        # 等待消息发送完成 (wait until the message is sent)
        sendResult = future.get(timeout=10)  # the article's camelCase name
        print(f"消息: {msg}\n所在的分区: {sendResult.partition}\n偏移量为: {sendResult.offset}\n")
        # 关闭生产 (close the producer)
        producer.close()
    except KafkaError as e:
        print(f"消息: {msg} 发送失败\n失败信息为: {e}\n")


def main() -> None:
    """The article's two messages, twice: "hello ..." to partition 0, the other to 1."""
    create_cluster()
    msg = "hello this is partition"
    msg1 = "this is partition"
    topic = "first"
    for _ in range(2):
        producer_03(topic, msg)
        producer_03(topic, msg1)


if __name__ == "__main__":
    main()
