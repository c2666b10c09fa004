"""The breach register (AVG art. 33 and 34): the 72-hour notification deadline to the AP."""
