"""The vendor an address's OUI is registered to (IEEE MA-L registry, through ``aiooui``).

A BR/EDR BD_ADDR and an LE public device address are IEEE 48-bit universal addresses whose top
24 bits are the company's OUI (Core v5.4 Vol 2 Part B §1.2, Vol 6 Part B §1.3.1); an LE random
address (static, resolvable or non-resolvable private, Vol 6 Part B §1.3.2) has none. The
``aiooui`` package ships the IEEE registry as a memory-mapped table; it is loaded on the first
lookup only (a few ms), never at import.
"""

from __future__ import annotations

import threading

#: the MA-L registry's name for blocks subdivided into MA-M / MA-S assignments (28/36-bit
#: prefixes, not in the table): such an address's company cannot be told from 24 bits
SUBDIVIDED = "IEEE Registration Authority"
_lock = threading.Lock()
_state: dict[str, bool] = {}


def _load() -> bool:
    """Load the table once; False (and no vendor names) when aiooui is missing or broken."""
    with _lock:
        if "ok" in _state:
            return _state["ok"]
        ok = False
        try:
            import asyncio

            import aiooui

            if not aiooui.is_loaded():
                try:
                    asyncio.get_running_loop()
                    running = True
                except RuntimeError:
                    running = False
                if running:  # called from inside an event loop: load on a thread of its own
                    t = threading.Thread(target=lambda: asyncio.run(aiooui.async_load()))
                    t.start()
                    t.join()
                else:
                    asyncio.run(aiooui.async_load())
            ok = aiooui.is_loaded()
        except Exception:  # a missing or corrupt table only loses the names
            ok = False
        _state["ok"] = ok
        return ok


def oui_vendor(address: str) -> str | None:
    """The organisation the address's OUI is registered to, or None (unregistered, subdivided,
    not an address, or locally administered / group: bit 1 or 0 of the first octet set)."""
    parts = address.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return None
    try:
        first = int(parts[0], 16)
    except ValueError:
        return None
    if first & 0x02 or first & 0x01:  # locally administered or group: not IEEE-assigned
        return None
    if not _load():
        return None
    import aiooui

    name = (aiooui.get_vendor(address) or "").strip()
    # an MA-L block the IEEE split into MA-M/MA-S assignments: the 24 bits name no company
    return None if not name or name == SUBDIVIDED else name
