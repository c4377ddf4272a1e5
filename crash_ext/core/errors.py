"""The errors crash-ext reports to the user, each as one line."""


class CrashExtError(Exception):
    """Base of every error crash-ext reports to the user as one line."""


class CrashCommandError(CrashExtError):
    """crash answered a command with an error; ``str()`` is crash's own message."""


class CrashTimeout(CrashExtError):
    """crash did not answer a command within the adapter's timeout."""


class CrashDied(CrashExtError):
    """The crash process exited or could not be started."""


class CrashCannotRead(CrashExtError):
    """crash runs but cannot read this kernel (e.g. it lists only some of its tasks): no
    verb may answer from what it sees.  Exit code 3, like a crash that failed."""


class MemoryReadError(CrashExtError):
    """An address could not be read (unmapped, not in the dump, user space)."""


class BadArgument(CrashExtError):
    """A user-supplied word (address, symbol, pid) is not acceptable."""
