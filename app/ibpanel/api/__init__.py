"""The local REST API: the trading module's /api/ibkr endpoints over the panel's Broker.

``server.start_api(broker, host, port, token, practice)`` serves it on the running loop (the
panel's qasync loop under ``ibpanel --api``), asked by ``ibpanel.runtime.rest_api.RestApi``;
``ibpanel serve`` is ``ibpanel.runtime.serve``.
``routes`` translates requests to broker calls, ``schemas`` validates them and shapes answers,
``security`` keeps the API local (Host / Origin / token / Content-Type checks, one error path),
``openapi`` describes it all (GET /api/ibkr/openapi.json). No Qt, no ib_async: broker/ only.
"""
