"""Compatibility layers: other bot frameworks' conversation APIs running on convo_fsm's engine.

`convo_fsm.compat.astrbot` mirrors AstrBot's plugin import paths, so a plugin ports by
changing the `astrbot.` prefix of its imports to `convo_fsm.compat.astrbot.`.
"""
