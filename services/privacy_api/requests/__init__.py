"""Data-subject requests (AVG art. 12-22): receipt, verification, deadlines, answers."""
