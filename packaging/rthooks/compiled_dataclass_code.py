"""Runtime hook of the frozen ``ibpanel``: dataclasses reuse the methods compiled when the bundle was built.

``ibpanel.dataclass_cache`` says why (about 50 ms of every start); the build wrote the file
(packaging/dataclass_code.py). A bundle never writes its cache: what it lacks is compiled as before. Without
the file, or with one it cannot read, nothing changes.
"""

import os
import sys

from ibpanel.dataclass_cache import install

install(os.path.join(sys._MEIPASS, "frozen_start", "dataclass_code.marshal"), keep=False)
