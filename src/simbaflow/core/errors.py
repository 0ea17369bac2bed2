"""Error types that reach the user as one clear sentence (no stack trace)."""


class SimbaflowError(Exception):
    """A user-facing failure: bad input, refused action, missing licence.

    The message must name the file, the key or line, and what was expected.
    ``exit_code`` is what the CLI exits with.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class SpecError(SimbaflowError):
    """A study spec (or other input file) does not match what is expected."""


class LicenseError(SimbaflowError):
    """SIMBA needs a licence and none is configured."""

    exit_code = 3


class NoFeasibleCandidate(SimbaflowError):
    """Selection found no candidate meeting every constraint."""

    exit_code = 4
