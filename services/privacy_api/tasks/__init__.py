"""Durable execution of privacy requests: one task per service, claimed under a lease by any
number of workers, retried with backoff, resumed after a crash."""
