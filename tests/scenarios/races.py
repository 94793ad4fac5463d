"""Benign races and one local cause (issue 13): a page that meets the device's own connection,
a random address refused while advertising, a Remote Name Request Cancel after the name came,
and three links lost within a second. The first three are protocol behaviour, not failures: the
analysis lists them in ``suppressed`` and reports nothing; the last is one incident.

Controller behaviour follows the Core spec (Vol 4 Part E): Create Connection to a device with an
ACL link already → Connection Already Exists (0x0B, §7.1.5); LE Set Random Address while legacy
advertising or scanning is enabled → Command Disallowed (0x0C, §7.8.4); Remote Name Request
Cancel with nothing pending → Unknown Connection Identifier (0x02, §7.1.20).
"""

from __future__ import annotations

import asyncio
import contextlib

from bumble import hci
from bumble.core import PhysicalTransport

from tests.scenarios.clean import pair_and_encrypt
from tests.scenarios.faults import bond_silently
from tests.scenarios.harness import sleep
from tests.scenarios.scenarios import PHONE_ADDR, Ctx, HeadsetBehaviour, scenario

EVT_CONNECTION_COMPLETE = 0x03
EVT_DISCONNECTION_COMPLETE = 0x05


@scenario(
    "page_races_incoming",
    "The phone and the headset are bonded. The headset powers on and connects to the phone at "
    "the moment the user taps it in the phone's settings: the phone's page completes with "
    "Connection Already Exists (0x0B) because the headset's connection came first; the phone "
    "uses that link (authentication, encryption, SDP).",
    1301,
)
async def page_races_incoming(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    await ctx.phone.device.set_connectable(True)
    loop = asyncio.get_running_loop()
    incoming = loop.create_task(hs.device.connect(PHONE_ADDR, transport=PhysicalTransport.BR_EDR))
    await sleep(0.002)  # the headset's page reaches the phone first
    with contextlib.suppress(Exception):
        await ctx.connect()
    await incoming
    await sleep(0.2)
    conn = next(c for c in ctx.phone.device.connections.values() if c.peer_address == hs.address)
    await ctx.secure(conn)
    await ctx.sdp_query(conn)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("connection_complete_already_exists", ctx.snoop.events(EVT_CONNECTION_COMPLETE, 0x0B))
    ctx.frame("connection_complete_incoming", ctx.snoop.events(EVT_CONNECTION_COMPLETE, 0x00))


@scenario(
    "random_address_while_advertising",
    "The phone advertises (legacy, connectable) and its host rotates its random address while "
    "advertising: LE Set Random Address is refused with Command Disallowed (0x0C); the host stops "
    "advertising, sets the address and advertises again.",
    1302,
)
async def random_address_while_advertising(ctx: Ctx) -> None:
    ctx.configure_phone()
    phone = ctx.phone.device
    await phone.power_on()
    await phone.start_advertising(auto_restart=False)
    await sleep(2.0)
    new = hci.Address("F2:11:22:33:44:55")
    await phone.send_command(hci.HCI_LE_Set_Random_Address_Command(random_address=new))
    await sleep(0.5)
    await phone.stop_advertising()
    await phone.send_command(hci.HCI_LE_Set_Random_Address_Command(random_address=new))
    await phone.start_advertising(auto_restart=False)
    await sleep(2.0)
    await phone.stop_advertising()
    ctx.frame("set_random_address_refused", ctx.snoop.commands(0x2005), 0)


@scenario(
    "name_cancel_after_result",
    "Inquiry finds the headset; the phone asks for its name and, as the user leaves the screen, "
    "cancels the request — after the name already came back: the Remote Name Request Cancel is "
    "answered Unknown Connection Identifier (0x02).",
    1303,
)
async def name_cancel_after_result(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    await ctx.discover(2.0)
    phone = ctx.phone.device
    name = await phone.request_remote_name(hs.address)
    ctx.truth["remote_name"] = name
    await phone.send_command(
        hci.HCI_Command(op_code=hci.HCI_REMOTE_NAME_REQUEST_CANCEL_COMMAND,
                        parameters=bytes(hs.address)),
        check_result=False,
    )  # fmt: skip
    await sleep(1.0)
    ctx.frame("remote_name_request_cancel", ctx.snoop.commands(0x041A), 0)


OTHERS = [("Car Kit", "A4:C1:38:5E:21:07"), ("Speaker", "A4:C1:38:5E:21:08")]


@scenario(
    "links_lost_together",
    "The phone holds links to a headset, a car kit and a speaker; its own radio stops (a "
    "coexistence or RF fault on the phone): the three links end in Connection Timeout (0x08) "
    "within half a second of each other — one cause on the phone's side, not three problems.",
    1304,
    ["link_loss"],
    "faults",
)
async def links_lost_together(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    nodes = []
    for name, addr in OTHERS:
        node = ctx.world.add_node(name, addr, class_of_device=0x240404)
        nodes.append(node)
    await ctx.power_on()
    for node in nodes:
        await node.device.power_on()
        await node.device.set_connectable(True)
    conns = [await pair_and_encrypt(ctx, discover=False)]
    for node in nodes:
        conns.append(
            await ctx.phone.device.connect(node.address, transport=PhysicalTransport.BR_EDR)
        )
    await sleep(3.0)
    peers = [ctx.headset.address, *(n.address for n in nodes)]  # type: ignore[union-attr]
    for i, peer in enumerate(peers):
        ctx.phone.controller.break_link(peer, timeout=5.0 + 0.2 * i)
    await sleep(7.0)
    ctx.faults.append("the phone's radio stops: three links time out (0x08) within 0.5 s")
    ctx.key_frames["links_timed_out"] = ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0)
