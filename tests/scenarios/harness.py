"""Deterministic simulation harness: virtual-clock event loop, btsnoop writer, devices.

Everything a scenario needs to run bumble's genuine host stack (L2CAP, SDP, AVDTP, RFCOMM,
HFP) against :class:`tests.scenarios.controller.ScenarioController` instances joined by a
:class:`tests.scenarios.controller.ScenarioLink`, with time virtualised so that minutes of
traffic take about a second, and randomness seeded so that every run is byte-identical.

btsnoop format: RFC 1761 style header, datalink 1002 (H4), timestamps in microseconds since
0000-01-01 (the "btsnoop epoch"), see Android's btsnoop documentation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import secrets
import selectors
import struct
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from bumble import hci
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.snoop import Snooper
from bumble.transport.common import AsyncPipeSink

from tests.scenarios.controller import ScenarioController, ScenarioLink

T = TypeVar("T")

#: Wall-clock instant that virtual time ``CLOCK_START`` maps to in every capture.
CAPTURE_EPOCH = datetime.datetime(2026, 1, 1, 10, 0, 0, tzinfo=datetime.UTC)
#: Virtual clock start (non-zero: bumble's MediaPacketPump treats 0.0 as "unset").
CLOCK_START = 1000.0

# btsnoop timestamps: microseconds since 0000-01-01T00:00:00; bumble's constant is the value
# for 2000-01-01T00:00:00Z.
_BTSNOOP_2000 = 0x00E03AB44A676000
_EPOCH_US = _BTSNOOP_2000 + int(
    (CAPTURE_EPOCH - datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
    / datetime.timedelta(microseconds=1)
)


class VirtualClockDeadlock(RuntimeError):
    """Raised when nothing can ever happen again (no timers, no I/O)."""


class _VirtualSelector(selectors.BaseSelector):
    """Selector that never sleeps: a blocking select advances the loop's virtual clock."""

    def __init__(self, loop_ref: list[VirtualClockLoop]) -> None:
        self._real = selectors.DefaultSelector()
        self._loop_ref = loop_ref

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise VirtualClockDeadlock("event loop would block forever")
        self._loop_ref[0].advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """asyncio loop whose ``time()`` is virtual: idle waits jump to the next timer."""

    def __init__(self, start: float = CLOCK_START) -> None:
        ref: list[VirtualClockLoop] = []
        super().__init__(_VirtualSelector(ref))
        ref.append(self)
        self._vtime = start
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._vtime

    def advance(self, seconds: float) -> None:
        self._vtime += max(seconds, 0.0)


class VirtualMediaClock:
    """Clock for :class:`bumble.avdtp.MediaPacketPump` reading the loop's virtual time."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, duration: float) -> None:
        await asyncio.sleep(duration)


@dataclass
class SnoopRecord:
    """One btsnoop record as written (frame numbers are 1-based, like tshark's)."""

    number: int
    direction: int  # 0 = host -> controller, 1 = controller -> host
    packet: bytes
    time: float  # virtual seconds since the capture started


class VirtualBtSnooper(Snooper):
    """btsnoop (datalink 1002, H4) writer stamping records from the loop's virtual clock."""

    def __init__(self, output: BinaryIO) -> None:
        self.output = output
        self.records: list[SnoopRecord] = []
        self.enabled = True
        output.write(b"btsnoop\0" + struct.pack(">II", 1, Snooper.DataLinkType.H4))

    def snoop(self, hci_packet: bytes, direction: Snooper.Direction) -> None:
        if not self.enabled:
            return
        now = asyncio.get_running_loop().time() - CLOCK_START
        flags = int(direction)
        if hci_packet[0] in (hci.HCI_COMMAND_PACKET, hci.HCI_EVENT_PACKET):
            flags |= 0x02
        stamp = _EPOCH_US + round(now * 1_000_000)
        self.output.write(
            struct.pack(">IIIIQ", len(hci_packet), len(hci_packet), flags, 0, stamp) + hci_packet
        )
        self.records.append(SnoopRecord(len(self.records) + 1, int(direction), hci_packet, now))

    # -- helpers to locate key frames in what was written -------------------------------
    def find(self, pred: Callable[[SnoopRecord], bool], start: int = 0) -> list[int]:
        """Frame numbers (1-based) of records matching ``pred``, from index ``start``."""
        return [r.number for r in self.records[start:] if pred(r)]

    def events(self, code: int, status: int | None = None) -> list[int]:
        """Frame numbers of HCI events with ``code`` (and first parameter ``status``)."""

        def pred(r: SnoopRecord) -> bool:
            p = r.packet
            if p[0] != hci.HCI_EVENT_PACKET or p[1] != code:
                return False
            return status is None or (len(p) > 3 and p[3] == status)

        return self.find(pred)

    def le_meta(self, subevent: int) -> list[int]:
        """Frame numbers of LE Meta events with ``subevent``."""
        return self.find(
            lambda r: (
                r.packet[0] == hci.HCI_EVENT_PACKET
                and r.packet[1] == 0x3E
                and r.packet[3] == subevent
            )
        )

    def commands(self, opcode: int) -> list[int]:
        """Frame numbers of HCI commands with ``opcode``."""
        return self.find(
            lambda r: (
                r.packet[0] == hci.HCI_COMMAND_PACKET
                and int.from_bytes(r.packet[1:3], "little") == opcode
            )
        )

    def l2cap_frames(
        self, pred: Callable[[int, bytes], bool], direction: int | None = None
    ) -> list[int]:
        """Frame numbers of ACL start fragments whose L2CAP (cid, payload) match ``pred``."""

        def match(r: SnoopRecord) -> bool:
            p = r.packet
            if p[0] != hci.HCI_ACL_DATA_PACKET or len(p) < 9:
                return False
            if direction is not None and r.direction != direction:
                return False
            if (p[2] >> 4) & 0x3 not in (0, 2):
                return False
            cid = int.from_bytes(p[7:9], "little")
            return pred(cid, p[9:])

        return self.find(match)


# -----------------------------------------------------------------------------------------
# Determinism
# -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def seeded_randomness(seed: int) -> Iterator[random.Random]:
    """Make bumble's ``secrets``/``random`` use deterministic streams while active."""
    rng = random.Random(seed)
    saved = (secrets.token_bytes, secrets.randbelow, random.getstate())

    def token_bytes(nbytes: int | None = None) -> bytes:
        return rng.randbytes(32 if nbytes is None else nbytes)

    def randbelow(n: int) -> int:
        return rng.randrange(n)

    secrets.token_bytes = token_bytes
    secrets.randbelow = randbelow
    random.seed(seed)
    try:
        yield rng
    finally:
        secrets.token_bytes, secrets.randbelow = saved[0], saved[1]
        random.setstate(saved[2])


def run_virtual(main: Callable[[], Awaitable[T]], seed: int) -> T:
    """Run ``main()`` on a fresh :class:`VirtualClockLoop` with seeded randomness."""
    logging.getLogger("bumble").setLevel(logging.CRITICAL)
    loop = VirtualClockLoop()
    try:
        with seeded_randomness(seed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asyncio.set_event_loop(loop)
            return loop.run_until_complete(main())
    finally:
        with contextlib.suppress(Exception):
            _cancel_all(loop)
        asyncio.set_event_loop(None)
        loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


# -----------------------------------------------------------------------------------------
# Devices
# -----------------------------------------------------------------------------------------
class ScenarioHost(Host):
    """bumble Host whose outgoing HCI packets leave after a small seeded processing delay."""

    host_latency = (0.00005, 0.0004)

    def __init__(self, controller: ScenarioController, seed: int) -> None:
        super().__init__(controller, AsyncPipeSink(controller))
        self._rng = random.Random(seed)
        self._last_send = 0.0

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        loop = asyncio.get_running_loop()
        when = max(loop.time() + self._rng.uniform(*self.host_latency), self._last_send + 2e-6)
        self._last_send = when
        loop.call_at(when, Host.send_hci_packet, self, packet)


@dataclass
class Node:
    """A bumble Device with its virtual controller."""

    device: Device
    controller: ScenarioController

    @property
    def address(self) -> hci.Address:
        return self.controller.public_address


@dataclass
class World:
    """The simulated radio environment of one scenario."""

    seed: int
    link: ScenarioLink = field(init=False)
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.link = ScenarioLink(self.seed)

    def add_node(
        self,
        name: str,
        address: str,
        *,
        classic: bool = True,
        le: bool = False,
        class_of_device: int = 0,
        snooper: Snooper | None = None,
        lmp_version: int = 0x0B,
        lmp_subversion: int = 0x2209,
        company: int = 0x000F,
        **config: Any,
    ) -> Node:
        ctrl = ScenarioController(
            name,
            link=self.link,
            public_address=address,
            seed=self.seed * 31 + len(self.nodes),
        )
        ctrl.lmp_version = lmp_version
        ctrl.hci_version = lmp_version
        ctrl.lmp_subversion = lmp_subversion
        ctrl.hci_revision = lmp_subversion
        ctrl.manufacturer_company_identifier = company
        cfg = DeviceConfiguration(
            name=name,
            address=hci.Address(address),
            classic_enabled=classic,
            le_enabled=le,
            class_of_device=class_of_device,
            **config,
        )
        host = ScenarioHost(ctrl, self.seed * 17 + len(self.nodes))
        if snooper is not None:
            host.snooper = snooper
        device = Device(config=cfg, host=host)
        node = Node(device, ctrl)
        self.nodes.append(node)
        return node


async def sleep(seconds: float) -> None:
    """Sleep in virtual time."""
    await asyncio.sleep(seconds)


async def with_timeout(aw: Awaitable[T], seconds: float) -> T | None:
    """Await ``aw`` for at most ``seconds`` of virtual time; None on timeout."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        return None
