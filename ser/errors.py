"""One small exception tree, so the build can tell bad input from bugs."""


class SerError(Exception):
    """Base class for every error ser-report raises on purpose."""


class DataError(SerError):
    """The data set (a folder, a file, its audio) is not what was expected."""


class ConfigError(SerError):
    """A parameter or option has a value the code cannot use."""
