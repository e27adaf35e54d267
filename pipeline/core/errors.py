"""Errors a user can act on: each prints as one line saying what is wrong and what to do."""


class PipelineError(Exception):
    """Base of every user-facing error; stages print it as one line and exit 2."""


class ParamError(PipelineError):
    """A params.yaml key is unknown, missing or has a value outside what is allowed."""


class DeviceError(PipelineError):
    """The requested device (GPU) is not available."""


class DownloadError(PipelineError):
    """A file could not be fetched or failed its checksum."""


class DataError(PipelineError):
    """An input file is missing, corrupt or of the wrong shape."""


class TrainingDiverged(PipelineError):
    """The loss became NaN or infinite."""


class DiskFullError(PipelineError):
    """An output does not fit on its disk: which file, the bytes it needs, what is free."""
