"""Parcel Pro Shipping API: Shipments, labels, track & trace, notifications and reports."""
