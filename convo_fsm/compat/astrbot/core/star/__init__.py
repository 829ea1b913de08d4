"""`astrbot.core.star` on convo_fsm (its modules: `filter`, `star_handler`)."""
