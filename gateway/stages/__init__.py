"""Pipeline stages that need more than a few lines (see gateway.pipeline)."""
