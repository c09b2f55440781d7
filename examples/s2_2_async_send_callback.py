"""Article §2.2 带回调函数的异步发送 — asynchronous send with a callback and an errback.

The callback runs when the producer receives the acknowledgement, with the
record's `RecordMetadata`; the errback runs with the exception when the send
fails for good. As the article notes, a failed send is retried automatically:
the errback sees only errors that retries cannot fix.

`main()` runs the article's function three times on a simulated cluster:
normally; after the partition leader was told to answer one produce request
with NOT_ENOUGH_REPLICAS (retriable: the producer retries, the callback runs);
and after it was told to answer one with TOPIC_AUTHORIZATION_FAILED (not
retriable: the errback runs).

Run: python examples/s2_2_async_send_callback.py
"""

from __future__ import annotations

import sim
from sim import KafkaProducer, RecordMetadata

SEED = 7


def create_cluster() -> sim.Cluster:
    """The simulated cluster the producer attaches to (the most recently created one)."""
    cluster = sim.Cluster(brokers=3, seed=SEED)
    cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
    return cluster


def producer(topic: str, msg: str, partition: int = 0) -> None:
    """
    :function: 生产者,生产数据 (producer: produce data)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param partition: 写入数据所在的分区 (the partition to write to)
    :return:
    """
    print("开始生产数据......")  # "Start producing data......"

    # 定义发送成功的回调函数 (the callback for a successful send)
    def on_send_success(record_metadata: RecordMetadata) -> None:
        print("消息成功发送到主题:", record_metadata.topic)  # "sent to topic:"
        print("分区:", record_metadata.partition)  # "partition:"
        print("偏移量:", record_metadata.offset)  # "offset:"

    # 定义发送失败的回调函数 (the callback for a failed send)
    def on_send_error(excp: Exception) -> None:
        print("发送消息时出现错误:", excp)  # "error while sending:"
        # 可以根据实际情况执行一些错误处理逻辑

    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=partition).add_callback(
        on_send_success
    ).add_errback(on_send_error)
    producer.close()


def main() -> None:
    """The callback on success, an automatic retry, then the errback."""
    cluster = create_cluster()
    msg = "this is profucer01"  # sic: the article's spelling
    topic = "first"
    producer(topic, msg)
    # A retriable error: the producer retries by itself and the callback runs.
    cluster.error("leader:first/0", "ProduceRequest", "NOT_ENOUGH_REPLICAS", count=1)
    producer(topic, msg)
    # A non-retriable error: the errback runs.
    cluster.error("leader:first/0", "ProduceRequest", "TOPIC_AUTHORIZATION_FAILED", count=1)
    producer(topic, msg)


if __name__ == "__main__":
    main()
