"""The store: tables, migrations and all reads and writes of state."""
