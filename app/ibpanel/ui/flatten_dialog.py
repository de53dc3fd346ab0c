"""The flatten confirmation: every closing order listed in one dialog, at market or at a limit offset.

The orders come from ``broker.flatten`` (Qt-free); this dialog only shows the plan, lets the trader pick
market or limit (offset in ticks through the bid / ask), and on Send runs ``execute_flatten``.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.flatten import FlattenPlan, FlattenResult, execute_flatten, prepare_flatten
from ibpanel.broker.models import OrderType

log = logging.getLogger(__name__)


class FlattenDialog(QDialog):
    """``flatten(broker, account, con_id=None)``: shows the plan; Send cancels then closes; ``done_flatten`` tells."""

    done_flatten = Signal(object)  # FlattenResult

    def __init__(self, broker, account: str, con_id: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("flattenDialog")
        self.broker = broker
        self.account = account
        self.con_id = con_id
        self.plan: FlattenPlan | None = None
        self.result_: FlattenResult | None = None
        self._tasks: set[asyncio.Task] = set()
        self._seq = 0
        self.setWindowTitle("Flatten position" if con_id else f"Flatten account {account}")
        self.type_combo = QComboBox()
        self.type_combo.addItem("At market", OrderType.MKT)
        self.type_combo.addItem("Limit through bid / ask", OrderType.LMT)
        self.type_combo.setAccessibleName("Close at market or at a limit")
        self.offset_spin = QSpinBox()
        self.offset_spin.setAccessibleName("Limit offset in ticks through the bid or ask")
        self.offset_spin.setRange(0, 100)
        self.offset_spin.setSuffix(" ticks")
        self.offset_spin.setEnabled(False)
        self.plan_text = QPlainTextEdit()
        self.plan_text.setReadOnly(True)
        self.plan_text.setAccessibleName("Orders the flatten sends")
        self.status_label = QLabel("")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.send_button = self.buttons.addButton("Send", QDialogButtonBox.ButtonRole.AcceptRole)
        self.send_button.setEnabled(False)
        self.buttons.rejected.connect(self.reject)
        self.send_button.clicked.connect(self.send)
        row = QHBoxLayout()
        row.addWidget(QLabel("Close"))
        row.addWidget(self.type_combo)
        row.addWidget(QLabel("offset"))
        row.addWidget(self.offset_spin)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.plan_text, 1)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)
        self.resize(560, 320)
        self.type_combo.currentIndexChanged.connect(self.replan)
        self.offset_spin.valueChanged.connect(self.replan)
        self.replan()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def order_type(self) -> OrderType:
        return OrderType(self.type_combo.currentData())  # Qt hands a str-enum back as its str

    def replan(self, *_args) -> None:
        self._seq += 1
        self.send_button.setEnabled(False)
        self.offset_spin.setEnabled(self.order_type() is OrderType.LMT)
        self.plan_text.setPlainText("Working out the orders…")
        self._spawn(self._replan(self._seq))

    async def _replan(self, seq: int) -> None:
        try:
            plan = await prepare_flatten(self.broker, self.account, con_id=self.con_id,
                                         order_type=self.order_type(), offset_ticks=self.offset_spin.value())
        except Exception as exc:  # noqa: BLE001 - shown; nothing is sent without a plan
            log.exception("flatten plan failed")
            if seq == self._seq:
                self.plan_text.setPlainText(f"Could not work out the orders: {exc}")
            return
        if seq != self._seq:
            return
        self.plan = plan
        self.plan_text.setPlainText(plan.describe())
        self.send_button.setEnabled(bool(plan.requests) or bool(plan.cancel_order_ids))

    def send(self) -> None:
        if self.plan is None or not self.send_button.isEnabled():
            return
        self.send_button.setEnabled(False)
        self.type_combo.setEnabled(False)
        self.offset_spin.setEnabled(False)
        self.status_label.setText("Sending…")
        self._spawn(self._send(self.plan))

    async def _send(self, plan: FlattenPlan) -> None:
        result = await execute_flatten(self.broker, plan)
        self.result_ = result
        text = result.stopped or (f"Cancelled {len(result.cancelled)}, sent {len(result.placed)} closing order(s)"
                                  + (f"; {len(result.failed)} refused: " + "; ".join(m for _r, m in result.failed)
                                     if result.failed else "."))
        self.status_label.setText(text)
        self.done_flatten.emit(result)
        if not result.stopped and not result.failed:
            self.accept()

    def done(self, code: int) -> None:  # noqa: D401 - Qt override: stop pending planning tasks
        for task in list(self._tasks):
            if not task.done() and self.result_ is None and self.status_label.text() != "Sending…":
                task.cancel()
        super().done(code)
