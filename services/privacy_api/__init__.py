"""Parcel Pro Privacy API: Data-subject requests, consents and the privacy registers."""
