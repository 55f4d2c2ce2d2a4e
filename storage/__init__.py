"""Storage: SQLAlchemy 2 async models, engine set-up, migrations and small query functions.

Never imports skills or transports. Portable SQL only (SQLite embedded default, PostgreSQL for scale-out).
"""
