"""Accounts: users and their lifecycle, rights and roles, profile, sub-accounts, API keys and
supervision."""
