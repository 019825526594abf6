"""Adapters talk to one system each (AWS, Kubernetes, PostgreSQL, Redis, RabbitMQ, Prometheus)."""
