"""kafka-producer-sim: a deterministic simulator of Kafka producer semantics."""

__version__ = "0.1.0"
