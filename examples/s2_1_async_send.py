"""Article §2.1 普通异步发送 — asynchronous send.

The article's example with only the import changed: `from sim import
KafkaProducer` instead of `from kafka3 import KafkaProducer`, and a simulated
cluster created first (3 brokers; topic "first": 3 partitions, RF 3).
`send()` returns a future at once; `close()` waits until the buffered record
has been sent and answered. The article discards the future; here the
function returns it so `main()` can print where the record landed.

Run: python examples/s2_1_async_send.py
"""

from __future__ import annotations

import sim
from sim import KafkaProducer
from sim.client.future import FutureRecordMetadata

SEED = 7


def create_cluster() -> sim.Cluster:
    """The simulated cluster the producer attaches to (the most recently created one)."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


def producer(topic: str, msg: str, partition: int = 0) -> FutureRecordMetadata:
    """
    :function: 生产者,生产数据 (producer: produce data)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param partition: 写入数据所在的分区 (the partition to write to)
    :return: the send's future (the article returns nothing)
    """
    print("开始生产数据......")  # "Start producing data......"
    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    # 将acks的值设为0,acks=0,此方式也是异步的方式,但是生产环境中不会这样使用,因为存在数据丢失的风险
    # producer = KafkaProducer(bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"], acks=0)
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    future = producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=partition)
    producer.close()
    return future


def main() -> None:
    """Send the article's message asynchronously, then show where it landed."""
    create_cluster()
    msg = "this is profucer01"  # sic: the article's spelling
    topic = "first"
    future = producer(topic, msg)
    send_result = future.get(timeout=10)  # already done: close() waited for it
    print(f"消息: {msg}\n所在的分区: {send_result.partition}\n偏移量为: {send_result.offset}\n")


if __name__ == "__main__":
    main()
