"""The device agent and its host end: devices driven from elsewhere.

``server`` runs where the devices are (``vfio-hil agent``); ``client`` gives
the host ``RemoteDevice`` (the ``Device`` protocol) and ``RemoteSide`` (one
lockstep step per round trip); ``wire`` is the line format between them;
``spawn`` starts an agent as a child process (locally or under SSH).
"""

from vfio_hil._agent.client import AgentChannel, RemoteDevice, RemoteSide
from vfio_hil._agent.spawn import spawn_agent
from vfio_hil._agent.wire import AgentError

__all__ = ["AgentChannel", "AgentError", "RemoteDevice", "RemoteSide", "spawn_agent"]
