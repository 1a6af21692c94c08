"""Where aios gets its settings and its process-wide runtime: the environment (and `.env`), checked once."""
