"""The asyncio runtime (the runtime issue). Empty for now."""
