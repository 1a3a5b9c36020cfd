"""What the hosts-file engine raises: one base class, so that a caller catches every engine failure with one
``except HostsFileError``, and the failures a caller tells apart. ``str(e)`` is one line with the remedy."""

from __future__ import annotations


class HostsFileError(Exception):
    """Any failure of the hosts-file engine (entries, block, file)."""


class InvalidEntryError(HostsFileError, ValueError):
    """A hostname, address or owner that cannot be written to a hosts file."""


class InvalidMarkerError(HostsFileError, ValueError):
    """A marker that would break the block format."""


class LockTimeout(HostsFileError):
    """Another process held the hosts file's lock past the bound; nothing was written."""


class HostsFileTooLarge(HostsFileError):
    """The file is above the size bound: it is neither read nor written."""
