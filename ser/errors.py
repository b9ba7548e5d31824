"""One small exception tree, so the build can tell bad input from bugs."""


class SerError(Exception):
    """Base class for every error ser-report raises on purpose."""


class DataError(SerError):
    """The data set (a folder, a file, its audio) is not what was expected."""


class ConfigError(SerError):
    """A parameter or option has a value the code cannot use."""


def reported(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` for a command line: ``(value, None)``, or, when
    it raises a :class:`SerError`, ``(None, message)`` after printing
    ``ERROR: message`` to stderr. Any other exception is a bug and propagates
    with its traceback."""
    import sys

    try:
        return fn(*args, **kwargs), None
    except SerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return None, str(exc)
