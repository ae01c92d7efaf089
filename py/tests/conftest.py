import os

# Tests never show progress bars.
os.environ.setdefault("PHASECAST_PROGRESS", "0")
