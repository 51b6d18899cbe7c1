"""ChatLab: an asyncio chat server speaking IRC (push) and a JSON HTTP API (polling)."""

__version__ = "0.1.0"
