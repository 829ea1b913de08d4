"""What of AstrBot 4.29.3's plugin API this compat tree does not offer, and why.

`MODULES` are the modules plugins import from. Their public names (`__all__`, else every
name not starting with `_`, leaving out imported modules and classes or functions of other
packages, such as `Path` or pydantic's `BaseModel`) exist under `convo_fsm.compat.` at
the same path, or are listed in `NOT_OFFERED` with the reason. tests/astrbot_real checks
both ways against the installed AstrBot: a name AstrBot adds or drops fails it.
"""

from __future__ import annotations

__all__ = ["MODULES", "NOT_OFFERED"]

MODULES = (
    "astrbot.api",
    "astrbot.api.event",
    "astrbot.api.event.filter",
    "astrbot.api.star",
    "astrbot.api.message_components",
    "astrbot.api.all",
    "astrbot.core.utils.session_waiter",
    "astrbot.core.message.components",
    "astrbot.core.config.astrbot_config",
)

_AGENT = "AstrBot's agent and function-tool framework (runs an LLM agent loop)"
_MEDIA = "media download and AstrBot's file token service (network and its web server)"
_GLOBAL_CONFIG = ("AstrBot's own process-wide config object; a plugin reads the bot's "
                  "config with Context.get_config()")
_DASHBOARD = "AstrBot's dashboard (web UI) passwords"

NOT_OFFERED: dict[str, dict[str, str]] = {
    "astrbot.api": {
        "BaseFunctionToolExecutor": _AGENT,
        "FunctionTool": _AGENT,
        "ToolSet": _AGENT,
        "agent": _AGENT,
        "html_renderer": "AstrBot's HTML render service (network); Star.html_render works",
        "sp": "AstrBot's shared preferences (its database); Star.put_kv_data works",
    },
    "astrbot.api.message_components": {
        "MediaResolver": _MEDIA,
        "download_file": _MEDIA,
        "file_token_service": _MEDIA,
        "astrbot_config": _GLOBAL_CONFIG,
    },
    "astrbot.core.message.components": {
        "MediaResolver": _MEDIA,
        "download_file": _MEDIA,
        "file_token_service": _MEDIA,
        "astrbot_config": _GLOBAL_CONFIG,
    },
    "astrbot.api.all": {
        "MediaResolver": _MEDIA,
        "download_file": _MEDIA,
        "file_token_service": _MEDIA,
        "astrbot_config": _GLOBAL_CONFIG,
        "html_renderer": "AstrBot's HTML render service (network); Star.html_render works",
        "Personality": "AstrBot's persona manager (its database)",
        "Platform": "platform adapters (a real chat network): PluginHost is the platform",
        "register_platform_adapter": "platform adapters (a real chat network)",
        "ProviderMetaData": "LLM provider registry: PluginHost(llm=...) is the provider",
        "load_config": "AstrBot's legacy global plugin config file; plugins get AstrBotConfig",
        "put_config": "AstrBot's legacy global plugin config file; plugins get AstrBotConfig",
        "update_config": "AstrBot's legacy global plugin config file; plugins get AstrBotConfig",
    },
    "astrbot.core.config.astrbot_config": {
        "ASTRBOT_CONFIG_PATH": "the path of AstrBot's own config file",
        "DEFAULT_CONFIG": "AstrBot's whole default bot config; PluginHost(bot_config=...)",
        "RateLimitStrategy": "AstrBot's rate-limit pipeline stage, which PluginHost has not",
        "migrate_config_on_load": "AstrBot's config file migrations",
        "DASHBOARD_INITIAL_PASSWORD_ENV": _DASHBOARD,
        "DASHBOARD_RESET_PASSWORD_ENV": _DASHBOARD,
        "generate_dashboard_password": _DASHBOARD,
        "hash_dashboard_password": _DASHBOARD,
        "hash_md5_dashboard_password": _DASHBOARD,
        "validate_dashboard_password": _DASHBOARD,
    },
}
