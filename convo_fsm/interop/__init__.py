"""Interop with other state-machine tools (`convo_fsm.interop.transitions`)."""
