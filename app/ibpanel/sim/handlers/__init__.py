"""The practice exchange's request handlers, one module per area; each is a part of ``SimServer``."""
