"""`astrbot.core` on convo_fsm: only `core.utils.session_waiter`."""
