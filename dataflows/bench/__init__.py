"""Every benchmark: commands that print figures (`hfl bench ...`), never timed tests."""
