"""The home page, health check and front-end vendor files."""
