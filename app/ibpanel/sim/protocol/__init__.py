"""The TWS API text protocol at server version 176, one module per role:

- codec.py: framing, the field codec, version negotiation, the field reader;
- messages.py: the one message-id table (``RequestId`` for requests, constants for replies);
- requests.py: typed requests and their decoders (``decode_request``);
- replies.py / side_replies.py: reply encoders.

Everything is re-exported here, so ``from ibpanel.sim import protocol as P`` then ``P.encode``,
``P.RequestId.PLACE_ORDER``, ``P.decode_request``, ``P.open_order`` work as one namespace.

Field counts matter: ib_async unpacks fixed tuples for several messages and ibapi drops a message whose
count is wrong, so every encoder builds an exact list. Nothing in this package does I/O.
"""

from ibpanel.sim.protocol.codec import *  # noqa: F403
from ibpanel.sim.protocol.messages import *  # noqa: F403
from ibpanel.sim.protocol.replies import *  # noqa: F403
from ibpanel.sim.protocol.requests import *  # noqa: F403
from ibpanel.sim.protocol.side_replies import *  # noqa: F403
