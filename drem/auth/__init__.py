"""Accounts: users, roles, sign-in (password or one-time code), API tokens."""
