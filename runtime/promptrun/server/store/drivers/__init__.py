"""The I/O under the store: run the operations of ``queries/`` on SQLite or PostgreSQL."""
