"""`astrbot.core.utils` on convo_fsm: only `session_waiter`."""
