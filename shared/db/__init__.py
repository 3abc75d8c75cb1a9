"""Data access: one module per table or aggregate, each the only place that touches it.

Connections come from `shared.db.pool`; migrations from `shared.db.migrate`.
"""
