"""The local launcher: real Kafka and MongoDB wire protocols as child processes, no Docker."""
