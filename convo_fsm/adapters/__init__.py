"""Adapters that run convo_fsm inside other bot frameworks: `convo_fsm.adapters.astrbot`,
`.aiogram` (aiogram 3), `.ptb` (python-telegram-bot) and `.nonebot` (NoneBot2, OneBot v11)."""
