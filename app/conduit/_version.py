"""Version of the Conduit package.

The wheel build replaces this file with the version chosen through ``CONDUIT_BUILD_VERSION``
(see ``setup.py``); the value below is the one a plain checkout or build carries.
"""

__version__ = "1.0.0"
