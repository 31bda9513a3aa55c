"""Errors a user can cause. Each carries a message a student can act on; the UI shows it as is."""


class NnvizError(Exception):
    """Base class: a problem with the user's input, files or environment, not a bug."""


class ConfigError(NnvizError, ValueError):
    """An option has a bad value (the message lists the valid choices)."""


class DataError(NnvizError):
    """A data set folder or file is missing or malformed (the message names the file)."""


class DeviceError(NnvizError):
    """The requested device (cuda, mps) is not available on this machine."""


class StorageError(NnvizError):
    """A run on disk is missing, incomplete, corrupted, or an import file is invalid."""


class CancelledError(NnvizError):
    """Training was cancelled by the user."""
