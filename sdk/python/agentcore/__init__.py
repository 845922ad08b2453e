"""agentcore: Python SDK for the agentcore Training API. See agentcore.sdk."""
from .sdk import *  # noqa: F401,F403
from .sdk import __all__, __version__  # noqa: F401
