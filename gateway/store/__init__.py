"""Store port and backends."""
