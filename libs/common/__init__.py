"""Building blocks shared by the Parcel Pro services. Never imports a service."""
