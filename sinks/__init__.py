"""ClickHouse adapters: clients, migrations, row mapping, idempotent batched writes, SQL."""
