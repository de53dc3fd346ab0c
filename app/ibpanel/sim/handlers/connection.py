"""Handshake and connection-level requests: START_API, the server clock.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession

log = logging.getLogger("ibpanel.sim")


TEXT_CLIENT_ID_IN_USE = "Unable to connect as the client id is already in use. Retry with a unique client id."
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2104, "Market data farm connection is OK:hkfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class ConnectionHandlers:
    """SimServer's connection part (mixed into SimServer; state lives on the server)."""

    # ----- handshake --------------------------------------------------------------------------------------
    def _on_start_api(self, session: ClientSession, req: P.StartApi) -> None:
        if session.client_id is not None:
            return
        other = self.by_client_id.get(req.client_id)
        if other is not None and not other.closed:
            log.warning("client %s asked for clientId %d, which is in use; error 326 and close", session.peer,
                        req.client_id)
            session.send(P.error_message(-1, 326, TEXT_CLIENT_ID_IN_USE))
            session.close()
            return
        session.client_id = req.client_id
        self.by_client_id[req.client_id] = session
        log.info("client %s connected", session.describe())
        session.send(P.managed_accounts(self.config.accounts))
        session.send(P.next_valid_id(self.exchange.next_order_id_hint()))
        for code, text in FARM_NOTICES:
            session.send(P.error_message(-1, code, text))

    def _on_current_time(self, session: ClientSession, args: tuple) -> None:
        session.send(P.current_time(int(self.market.clock().timestamp())))  # the replay clock when replaying
