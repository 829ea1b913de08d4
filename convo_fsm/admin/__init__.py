"""A live admin for convo_fsm sessions: pages, actions, Server-Sent Events, /metrics.

    from convo_fsm.admin import app
    admin = app(engine, metrics=metrics, transcript=transcript)   # an ASGI app
    print(admin.guard.token)                                      # the admin token
    uvicorn.run(admin, host="127.0.0.1", port=8377)

or from a store: `convo-fsm serve --store URL`. Needs the `admin` extra
(`pip install 'convo-fsm[admin]'`: starlette, uvicorn, jinja2, prometheus_client).
"""

from convo_fsm.admin.app import LOCAL_HOSTS, AdminApp, app, store_app
from convo_fsm.admin.source import AdminError, EngineSource, Page, StoreSource, query

__all__ = ["LOCAL_HOSTS", "AdminApp", "AdminError", "EngineSource", "Page", "StoreSource", "app",
           "query", "store_app"]
