# Replaces PyInstaller's own hook for PySide6.QtGui (hooks in the spec's hookspath win) to leave out
# the GTK3 platform theme plugin: it would drag part of the build machine's GTK stack (cairo, pango,
# gdk-pixbuf, atk) into the bundle, where it can clash with the user's own GTK when the plugin loads.
# Without it Qt uses its own look or the xdg-desktop-portal theme, which is still collected.
from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [entry for entry in binaries if "libqgtk3" not in entry[0]]
