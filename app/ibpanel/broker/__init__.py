"""Qt-free trading service over ib_async: the only package that imports ib_async."""

from ibpanel.broker.eventkit_numpy import import_eventkit

import_eventkit()  # before ib_async: its event library would load numpy, which start-up does not need
