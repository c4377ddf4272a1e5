"""Reads that land on a page the dump does not hold because makedumpfile left it out.

A kdump-made dump is usually filtered (``makedumpfile -d 31``: zero, cache, user and free
pages left out).  crash then answers a read there with ``page excluded: kernel virtual
address: ADDR  type: "..."`` (its ``PAGE_EXCLUDED`` error).  Such a read is no sign of a
corrupt list or a bad pointer: the memory simply is not in the file.  The adapters give
the reason in these words (:data:`EXCLUDED`) wherever crash's error is passed on.
Inside crash too: stdlib-free.
"""

#: how crash-ext says it, in evidence and errors
EXCLUDED = "not in the dump (excluded by makedumpfile)"
#: crash's words for it (memory.c: PAGE_EXCLUDED)
CRASH_WORDS = "page excluded"


def is_excluded(text):
    """Return True when crash's error ``text`` says the page was left out of the dump."""
    return CRASH_WORDS in str(text)


def explain(text):
    """Return crash's error ``text``, prefixed with :data:`EXCLUDED` when it is a page
    makedumpfile left out."""
    text = str(text)
    if is_excluded(text) and EXCLUDED not in text:
        return "%s: %s" % (EXCLUDED, text)
    return text
