"""Recorded crash output the unit tests replay; tests/lab/record_fixtures.py records the
``lab61_*`` files from today's lab.

``$CRASH_EXT_FIXTURES`` names another directory holding the same files: the unit tests
then read those (tests/test_fixtures_lab.py points it at a recording made from today's
dumps, to show the tests hold there too).
"""

import os

#: the directory the lab61_* recordings are read from
DIR = os.environ.get("CRASH_EXT_FIXTURES") or os.path.dirname(os.path.abspath(__file__))


def fixture(name):
    """Return the path of the recording ``name`` (in :data:`DIR`)."""
    return os.path.join(DIR, name)
