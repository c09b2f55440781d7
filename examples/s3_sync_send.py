"""Article §3 同步发送 API — synchronous send: `future.get(timeout=10)`.

Synchronous sending is asynchronous sending followed by `future.get()`,
which waits for the broker's answer (here: in simulated time; the timeout
is in simulated seconds). The article adds that acks="all" is "also the
synchronous way": it is not. acks decides only *when the broker answers*;
`send()` returns a future at once whatever acks is (see
scenarios/article-sync-claim.toml and tests/examples/test_examples.py).

The article discards what `future.get()` returns; here the function returns
it so `main()` can print each record's partition and offset.

Run: python examples/s3_sync_send.py
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


def producer(topic: str, msg: str, partition: int = 0) -> RecordMetadata:
    """
    :function: 生产者,生产数据 (producer: produce data)
    :param topic: 写入数据所在的topic (the topic to write to)
    :param msg: 写入的数据 (the data to write)
    :param partition: 写入数据所在的分区 (the partition to write to)
    :return: the record's metadata (the article returns nothing)
    """
    print("开始生产数据......")  # "Start producing data......"
    # 初始化生产者对象,bootstrap_servers参数传入kafka集群
    # 将acks的值设为all,acks="all",此方式也是同步的方式.  <- wrong: acks does not make send() wait
    # producer = KafkaProducer(bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"], acks="all")
    producer = KafkaProducer(
        bootstrap_servers=["170.22.70.174:9092", "170.22.70.178:9092", "170.22.70.179:9092"]
    )
    # 将发送消息转换成bytes类型,编码使用utf-8
    future = producer.send(topic=topic, value=bytes(msg, "utf-8"), partition=partition)
    # 等待 Future 返回结果,设置超时时间为10秒 (wait for the result, 10 s timeout)
    record_metadata = future.get(timeout=10)
    producer.close()
    return record_metadata


def main() -> None:
    """Three synchronous sends to partition 0: offsets 0, 1, 2."""
    create_cluster()
    topic = "first"
    for i in range(1, 4):
        msg = f"this is profucer0{i}"
        send_result = producer(topic, msg)
        print(f"消息: {msg}\n所在的分区: {send_result.partition}\n偏移量为: {send_result.offset}\n")


if __name__ == "__main__":
    main()
