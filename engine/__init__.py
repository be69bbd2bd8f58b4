"""Laurel's domain: models, metrics, facts, rules, the durable_rules evaluator and runs.

Nothing here imports Flask. Every entry point takes a SQLAlchemy ``Session``; callers own
the transaction (engine code flushes, it does not commit).
"""
