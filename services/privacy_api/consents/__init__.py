"""Consents for profiling, personalised advertisements and analytics cookies (AVG art. 7)."""
