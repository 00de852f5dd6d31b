"""Command implementations: thin functions that wire the layers together."""
