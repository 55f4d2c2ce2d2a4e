"""The bot's HTTP side (aiohttp): transport level, like bot/transports. Skills never import it."""
