"""kafka-producer-sim: a deterministic simulator of Kafka producer semantics.

import sim
cluster = sim.Cluster(brokers=3, seed=7)
cluster.create_topic("first", partitions=3, replication_factor=3, min_insync_replicas=2)
producer = sim.KafkaProducer(cluster=cluster, acks="all", linger_ms=5)
md = producer.send("first", key=b"a", value=b"hi").get(timeout=10)
"""

from sim import errors
from sim.client.consumer import ConsumerRecord, KafkaConsumer, OffsetAndMetadata, TopicPartition
from sim.client.future import RecordMetadata
from sim.client.producer import KafkaProducer
from sim.result import RunResult
from sim.runtime import Cluster

__version__ = "0.1.0"

__all__ = [
    "Cluster",
    "ConsumerRecord",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "RecordMetadata",
    "RunResult",
    "TopicPartition",
    "errors",
    "__version__",
]
