"""Exceptions with messages meant for the user: each says what is wrong and what is supported."""


class LosslessBpgError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(LosslessBpgError):
    """An input path names nothing readable as a file: missing, a folder, a pipe or a device."""


class UnsupportedImageError(LosslessBpgError):
    """The input image has a mode, depth or layout the codec cannot store losslessly."""


class FormatError(LosslessBpgError):
    """A compressed file is not a valid lbpg file (wrong magic, truncated, corrupted)."""


class VersionError(FormatError):
    """A compressed file was written by a container version this build cannot read."""


class ModelMismatchError(LosslessBpgError):
    """A file was written by a residual model other than the one available."""


class ChecksumError(LosslessBpgError):
    """Decoded pixels do not match the checksum stored in the file."""


class BackendUnavailableError(LosslessBpgError):
    """A lossy backend was requested that is not installed on this machine."""


class OutputExistsError(LosslessBpgError):
    """An output path exists and --force was not given."""


class ImageTooLargeError(LosslessBpgError):
    """An image needs more memory to code than this machine has (no tiling yet)."""


class TrainingSetupError(LosslessBpgError):
    """A training run cannot start as asked (e.g. a restart with no minutes left to run)."""
