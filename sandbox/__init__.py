"""A local server that speaks WeChat's HTTP contract, for tests and the zero-setup demo."""

from .calls import RecordedCall
from .faults import Fault
from .identities import openid_for, session_key_for, unionid_for
from .server import RunningSandbox, make_sandbox_app, start_sandbox
from .state import SandboxState

__all__ = [
    "Fault",
    "RecordedCall",
    "RunningSandbox",
    "SandboxState",
    "make_sandbox_app",
    "openid_for",
    "session_key_for",
    "start_sandbox",
    "unionid_for",
]
