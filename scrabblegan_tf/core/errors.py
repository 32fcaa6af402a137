"""The errors that mean bad input rather than a bug: the CLIs show them as one line, exit status 2."""


class UserError(Exception):
    """Bad input from the user (a flag value, a file, a text): one line, exit status 2."""


class WorkdirError(RuntimeError):
    """A run folder that cannot hold the run: not writable, or too little free space."""
