"""backdrop: blur or replace the background behind a person, live or offline."""

__version__ = "0.1.0"
