"""Article §5 生产者提高吞吐量 — throughput settings.

batch.size 16 KB (the default, listed by the article), linger.ms 5 (the
article suggests 5-100 ms), snappy compression and a 64 MB buffer
(RecordAccumulator; default 32 MB). The simulator models what they change:
batches wait up to linger_ms to fill, compression shrinks them on the wire
(no snappy library is needed), and buffer_memory bounds what send() may
queue before it blocks.

The records have no key and no explicit partition, so kafka-python's default
partitioner picks a random partition for each (seeded here, so the output is
always the same).

Run: python examples/s5_throughput.py
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


def producer(topic: str, msg: str) -> None:
    """
    :function: 生产者,生产数据 (producer: produce data)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :return:
    """
    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"],
        batch_size=16 * 1024,  # batch.size: 16 KB (the default; the article lists it)
        linger_ms=5,  # linger_ms设置为5ms
        compression_type="snappy",  # 设置压缩类型为snappy
        buffer_memory=64 * 1024 * 1024,  # 设置缓冲区大小为64MB
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
    """Three keyless records with the throughput settings."""
    create_cluster()
    topic = "first"
    for i in range(3):
        producer(topic, "this is throughput" + str(i))


if __name__ == "__main__":
    main()
