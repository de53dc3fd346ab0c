"""What a session runs besides its front end, without Qt: used by the window (ui/panel.py), ``ibpanel serve``,
the smoke test and screenshots (ui/headless.py) alike.

- ``session``: ``Session`` - broker and journal (safety limits given by the caller), the practice
  exchange once asked, the REST API; ``close()`` stops them in order.
- ``practice``: the profile's practice exchange, one owner per profile; other processes join it.
- ``rest_api``: ``RestApi`` - serve /api/ibkr for a broker or not (the Connection tab's switch asks it).
- ``serve``: ``ibpanel serve`` (a session with the API, no window).

The only package that imports broker, api and sim alike (contracts in pyproject's [tool.importlinter]).
"""
