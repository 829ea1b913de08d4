"""`astrbot.api.message_components` on convo_fsm (the same names as
`astrbot.core.message.components`)."""

from convo_fsm.compat.astrbot.core.message.components import *  # noqa: F403
from convo_fsm.compat.astrbot.core.message.components import __all__ as __all__
