"""The Replay control above the tabs while a recorded day replays: play / pause, speed 1x-60x, jump to a time.

It drives ``sim.replay.ReplayClock`` directly: the clock is Qt-free and thread-safe, and the in-process
practice exchange (its own thread) reads the same clock, so every client of the exchange sees the change.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDateTime, QTimer
from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton

if TYPE_CHECKING:  # the clock comes from the session's practice exchange; ui never imports sim
    from ibpanel.sim.replay import ReplayClock

SPEEDS = (1, 2, 5, 10, 30, 60)


class ReplayBar(QFrame):
    """Shows the replay clock in the exchange's time zone and its position in the recorded day."""

    def __init__(self, clock: ReplayClock, zone: str = "US/Eastern", title: str = "", parent=None,
                 zones: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.setObjectName("replayBar")
        self.clock = clock
        self.zone = ZoneInfo(zone)
        # every market of the recording, e.g. New York and Hong Kong, so each trader sees their local time
        self.zones = tuple(ZoneInfo(z) for z in dict.fromkeys((zone, *zones)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self.title = QLabel(f"Replay {title}".strip())
        self.title.setStyleSheet("font-weight: bold;")
        self.play_button = QPushButton()
        self.play_button.setObjectName("replayPlay")
        self.play_button.clicked.connect(self._on_play_clicked)
        self.speed = QComboBox()
        self.speed.setObjectName("replaySpeed")
        for value in SPEEDS:
            self.speed.addItem(f"{value}×", value)
        self.speed.currentIndexChanged.connect(self._on_speed_changed)
        self.time_label = QLabel()
        self.time_label.setObjectName("replayTime")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.jump_edit = QDateTimeEdit()
        self.jump_edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.jump_edit.setToolTip(f"Jump to this time ({zone})")
        self.jump_button = QPushButton("Jump")
        self.jump_button.clicked.connect(self._on_jump_clicked)
        for widget, name in ((self.play_button, "Play or pause the replay"), (self.speed, "Replay speed"),
                             (self.jump_edit, "Replay time to jump to"), (self.jump_button, "Jump to that time"),
                             (self.progress, "Position in the recorded day")):
            widget.setAccessibleName(name)
        for widget in (self.title, self.play_button, self.speed, self.time_label):
            layout.addWidget(widget)
        layout.addWidget(self.progress, 1)
        layout.addWidget(self.jump_edit)
        layout.addWidget(self.jump_button)
        state = clock.state()
        self._set_jump_range(state.start, state.end, state.time)
        self.speed.setCurrentIndex(min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - state.speed)))
        self.timer = QTimer(self)
        self.timer.setObjectName("replayBarRefresh")
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def _local(self, moment: datetime) -> QDateTime:
        local = moment.astimezone(self.zone)
        return QDateTime(local.year, local.month, local.day, local.hour, local.minute, local.second)

    def _set_jump_range(self, start: datetime, end: datetime, now: datetime) -> None:
        self.jump_edit.setDateTimeRange(self._local(start), self._local(end))
        self.jump_edit.setDateTime(self._local(now))

    def refresh(self) -> None:
        state = self.clock.state()
        self.play_button.setText("Pause" if state.playing else ("Finished" if state.finished else "Play"))
        local = state.time.astimezone(self.zone)
        others = [state.time.astimezone(z) for z in self.zones[1:]]
        self.time_label.setText(f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"
                                + "".join(f"  ·  {o:%H:%M:%S} {o.tzname()}" for o in others))
        span = (state.end - state.start).total_seconds()
        done = (state.time - state.start).total_seconds() / span if span > 0 else 1.0
        self.progress.setValue(int(done * 1000))
        if not self.jump_edit.hasFocus():  # follows the clock until the user edits it
            self.jump_edit.setDateTime(self._local(state.time))

    def _on_play_clicked(self) -> None:
        if self.clock.state().playing:
            self.clock.pause()
        else:
            self.clock.play()
        self.refresh()

    def _on_speed_changed(self, index: int) -> None:
        self.clock.set_speed(float(self.speed.itemData(index)))
        self.refresh()

    def _on_jump_clicked(self) -> None:
        q = self.jump_edit.dateTime()
        d, t = q.date(), q.time()
        local = datetime(d.year(), d.month(), d.day(), t.hour(), t.minute(), t.second(), tzinfo=self.zone)
        self.clock.seek(local.astimezone(timezone.utc))
        self.refresh()

    def shutdown(self) -> None:
        self.timer.stop()
