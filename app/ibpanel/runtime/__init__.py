"""What a session runs besides its front end, without Qt: used by the window (ui/app.py) and ``ibpanel serve``.

Today: the profile's practice exchange, one owner per profile (``runtime.practice``).
"""
