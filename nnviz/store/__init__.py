"""Runs on disk: the run format, reading and writing runs, zip archives."""
