"""`taly local`: a self-contained copy of the estate's data plane on loopback, without Docker.

PostgreSQL primary and streaming replica (CMS schema and sample data), Redis primary and replica,
a RabbitMQ node with the CMS queues, an AWS API emulator (moto) seeded like a real environment, and
Prometheus with the PostgreSQL and Redis exporters. estate.py composes the component modules;
supervisor.py spawns and stops processes by pid; state.py keeps the state file.
"""
