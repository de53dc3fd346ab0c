"""Runtime hook of the frozen ``ibpanel``: the panel's collector pause (``ibpanel.gc_pause``) starts here.

PyInstaller runs this before its own runtime hooks and the launcher, so their imports are covered too; the
CLI's own call then finds the collector already off and leaves it to the timer started here.
"""

from ibpanel.gc_pause import pause_collector_during_start

pause_collector_during_start()
