"""Qt-free trading service over ib_async: the only package that imports ib_async."""
