"""SQLAlchemy store: the state and the queue (transactional outbox)."""
