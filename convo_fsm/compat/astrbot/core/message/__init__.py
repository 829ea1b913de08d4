"""`astrbot.core.message` on convo_fsm."""
