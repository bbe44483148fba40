"""Red Config behind the cog: task settings, persisted task state, and game servers."""
