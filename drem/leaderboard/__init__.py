"""Leaderboard: ranking (pure functions), leaderboard views, overlays, commentator."""
