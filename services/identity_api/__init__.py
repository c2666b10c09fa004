"""Parcel Pro Identity API: Account holders, staff, login, tokens and API keys."""
