"""IB Panel: a desktop trading panel for Interactive Brokers with a built-in practice exchange."""

__version__ = "0.1.0"
