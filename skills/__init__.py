"""Skills: one module each, defining ``skill = Skill(...)``. Enable them in config.toml under bot.skills."""
