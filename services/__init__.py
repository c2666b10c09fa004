"""The Parcel Pro services: identity_api, shipping_api, privacy_api (and the gateway launcher)."""
