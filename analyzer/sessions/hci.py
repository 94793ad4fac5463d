"""The HCI layer's state across frames (:class:`HciState`) with every event handler registered:
importing this module loads the handlers of links, pairing and devices."""

from __future__ import annotations

from analyzer.sessions import hci_devices, hci_links, hci_pairing
from analyzer.sessions.hci_state import (
    COMPLETIONS,
    EVENT_HANDLERS,
    IO_CAP_NAMES,
    WAITS_ON_USER,
    HciState,
    handles,
)

#: the handler modules (imported for their registrations)
HANDLER_MODULES = (hci_devices, hci_links, hci_pairing)

__all__ = [
    "COMPLETIONS",
    "EVENT_HANDLERS",
    "HANDLER_MODULES",
    "IO_CAP_NAMES",
    "WAITS_ON_USER",
    "HciState",
    "handles",
]
