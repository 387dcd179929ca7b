"""The durable engine: the relational ledger of claims (holds, orders, registrations, seats)."""
