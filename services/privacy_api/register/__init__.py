"""The register of processing activities (AVG art. 30), read from one data file."""
