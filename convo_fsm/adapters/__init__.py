"""Adapters that run convo_fsm inside other bot frameworks (`convo_fsm.adapters.astrbot`)."""
