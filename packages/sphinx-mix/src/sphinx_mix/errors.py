"""The one exception type that bad input raises, so callers and the CLI can catch it."""


class MixError(Exception):
    """Bad input or an unreadable checkpoint; the message names the file, key or value."""
