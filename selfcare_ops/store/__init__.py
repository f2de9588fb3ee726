"""Storage: engines and sessions, the SQLAlchemy model, bulk inserts, migrations."""
