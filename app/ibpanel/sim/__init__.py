"""The practice exchange: a TWS-protocol simulator. Imports neither Qt nor ib_async."""
