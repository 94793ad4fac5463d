"""Virtual controller and link filling the gaps of bumble 0.0.236's emulated controller.

References are to the Bluetooth Core Specification v5.4, Vol 4 Part E (HCI) unless noted.
Added behaviour (see docs SCENARIOS.md for what the stock controller lacks):

* small, seeded controller latencies; events always after their command's Command Complete
  / Command Status (7.7.14 / 7.7.15); over-the-air delay on the link;
* realistic buffers: ACL 1021 bytes x 8, SCO 60 bytes x 8 (7.4.5), controller-to-host ACL
  fragmentation;
* Inquiry with Extended Inquiry Result (7.1.1, 7.7.38), Inquiry Complete (7.7.1);
* page timeout (0x04) when the peer is not page scanning (7.1.5, 7.3.16);
* Authentication Requested -> Link Key Request -> Reply / Negative Reply -> Authentication
  Complete with 0x06 (PIN or Key Missing) or 0x05 (Authentication Failure) (7.1.15, 7.7.23);
* Set Connection Encryption -> Encryption Change (7.1.16, 7.7.8), or a failed one when the
  peer is set to fail encryption (``fail_encryption``: 0x22 after the 30 s LMP response
  timeout, Vol 2 Part C 5.2; any other code at once, as the peer's LMP_not_accepted);
* Reset drops every link without a Disconnection Complete; the peers notice by their
  supervision timeout (7.3.2, Vol 2 Part B 3.1);
* Hardware Error event on demand (7.7.16);
* Read Remote Version Information (7.1.23, 7.7.12);
* link supervision timeout -> Disconnection Complete 0x08 (Vol 2 Part B 3.1);
* legacy advertising interval in 0.625 ms units plus a 0-10 ms advDelay (Vol 6 Part B
  4.4.2.2.1); scan interval / window honoured (duty cycle); legacy advertising reports;
* SCO/eSCO: legacy Setup/Accept Synchronous Connection, real Synchronous Connection Complete
  parameters, SCO data forwarded between the two hosts.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bumble import hci, ll, lmp
from bumble.controller import Connection, Controller, LegacyAdvertiser
from bumble.core import PhysicalTransport
from bumble.link import LocalLink

HCI_SETUP_SYNCHRONOUS_CONNECTION = 0x0428
HCI_ACCEPT_SYNCHRONOUS_CONNECTION_REQUEST = 0x0429

# Error codes (Vol 1 Part F)
PAGE_TIMEOUT = 0x04
AUTHENTICATION_FAILURE = 0x05
PIN_OR_KEY_MISSING = 0x06
CONNECTION_TIMEOUT = 0x08
ACL_CONNECTION_ALREADY_EXISTS = 0x0B
LMP_RESPONSE_TIMEOUT = 0x22
#: Vol 2 Part C 5.2: an LMP transaction not answered within 30 s fails with 0x22
LMP_RESPONSE_TIMEOUT_S = 30.0
HCI_HARDWARE_ERROR_EVENT = 0x10


@dataclass
class SyncParams:
    """Parameters reported in Synchronous Connection Complete (7.7.35)."""

    link_type: int  # 0x00 SCO, 0x02 eSCO
    transmission_interval: int  # slots
    retransmission_window: int  # slots
    packet_length: int  # bytes
    air_mode: int  # 0x02 CVSD, 0x03 transparent


#: Voice_Setting air coding format (bits 1-0, 6.12) -> Air_Mode (7.7.35)
_AIR_MODE_OF_VOICE_SETTING = {0b00: 0x02, 0b01: 0x00, 0b10: 0x01, 0b11: 0x03}
#: Coding_Format codec ID (Assigned Numbers 2.11) -> Air_Mode: u-law, A-law, CVSD, transparent
_AIR_MODE_OF_CODING_FORMAT = {0x00: 0x00, 0x01: 0x01, 0x02: 0x02, 0x03: 0x03}
#: SCO packet types (7.1.26 Packet_Type bits 2-0): HV3, HV2, HV1 -> (Tsco slots, bytes)
_SCO_PACKETS = ((0x0004, 6, 30), (0x0002, 4, 20), (0x0001, 2, 10))


def _sync_params_from_setup(
    packet_type: int, voice_setting: int | None, coding_format: int | None
) -> SyncParams:
    """Pick the parameters a real controller would settle on (HFP 1.8 Table 5.8): eSCO
    EV3 / 2-EV3 when any eSCO type may be used, else the largest allowed SCO HV packet."""
    if voice_setting is not None:
        air_mode = _AIR_MODE_OF_VOICE_SETTING[voice_setting & 0x3]
    else:
        air_mode = _AIR_MODE_OF_CODING_FORMAT.get(
            0x02 if coding_format is None else coding_format, 0x02
        )
    # EV3/EV4/EV5 bits set "may be used"; the four EDR bits set mean "shall not be used"
    if packet_type & 0x0038 or packet_type & 0x03C0 != 0x03C0:
        # EV3 / 2-EV3: Tesco 12 slots, WEsco 2 slots, 60-byte packets (HFP T2 / S4)
        return SyncParams(0x02, 12, 2, 60, air_mode)
    for bit, slots, length in _SCO_PACKETS:
        if packet_type & bit:
            return SyncParams(0x00, slots, 0, length, air_mode)
    return SyncParams(0x00, 6, 0, 30, air_mode)


class ScenarioLink(LocalLink):
    """LocalLink with ordered controllers, over-the-air delay and breakable links."""

    AIR_DELAY = 0.000625 * 2  # two slots

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.controllers: dict[Controller, None] = {}  # type: ignore[assignment]
        self.rng = random.Random(seed ^ 0x5A5A)
        self._last_delivery = 0.0
        self.broken: set[frozenset[hci.Address]] = set()

    def add_controller(self, controller: Controller) -> None:
        self.controllers[controller] = None

    def remove_controller(self, controller: Controller) -> None:
        self.controllers.pop(controller, None)

    def deliver(self, callback: Callable[[], Any], delay: float | None = None) -> None:
        """Run ``callback`` after the air delay, preserving submission order."""
        loop = asyncio.get_running_loop()
        when = loop.time() + (self.AIR_DELAY if delay is None else delay)
        when = max(when, self._last_delivery + 1e-6)
        self._last_delivery = when
        loop.call_at(when, callback)

    def is_broken(self, a: hci.Address, b: hci.Address) -> bool:
        return frozenset((a, b)) in self.broken

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport == PhysicalTransport.BR_EDR:
            dest = self.find_classic_controller(destination_address)
            source = sender_controller.public_address
            if self.is_broken(source, destination_address):
                return
        else:
            dest = self.find_le_controller(destination_address)
            source = sender_controller.random_address
        if dest is not None:
            target = dest
            self.deliver(lambda: target.on_link_acl_data(source, transport, data))

    def send_sco_data(
        self, sender: Controller, destination_address: hci.Address, data: bytes
    ) -> None:
        if self.is_broken(sender.public_address, destination_address):
            return
        dest = self.find_classic_controller(destination_address)
        if isinstance(dest, ScenarioController):
            target = dest
            source = sender.public_address
            self.deliver(lambda: target.on_link_sco_data(source, data))

    def send_advertising_pdu(
        self, sender_controller: Controller, packet: ll.AdvertisingPdu
    ) -> None:
        for c in self.controllers:
            if c is not sender_controller:
                self.deliver(functools.partial(c.on_ll_advertising_pdu, packet), 0.0)

    def send_lmp_packet(
        self,
        sender_controller: Controller,
        receiver_address: hci.Address,
        packet: lmp.Packet,
    ) -> None:
        if self.is_broken(sender_controller.public_address, receiver_address):
            return
        receiver = self.find_classic_controller(receiver_address)
        if receiver is None:
            return
        source = sender_controller.public_address
        self.deliver(lambda: receiver.on_lmp_packet(source, packet))


class ScenarioLegacyAdvertiser(LegacyAdvertiser):
    """Legacy advertiser with the interval in 0.625 ms units plus advDelay (Vol 6 B 4.4.2.2.1)."""

    rng: random.Random

    def _on_timer_fired(self) -> None:
        self.send_advertising_data()
        interval = self.advertising_interval_min * 0.000625
        adv_delay = self.rng.randrange(0, 10_001) / 1_000_000
        self.timer_handle = asyncio.get_running_loop().call_later(
            interval + adv_delay, self._on_timer_fired
        )


class ScenarioController(Controller):
    """bumble Controller with the behaviour listed in the module docstring."""

    acl_data_packet_length = 1021
    total_num_acl_data_packets = 8
    sco_data_packet_length = 60
    total_num_sco_data_packets = 8
    le_acl_data_packet_length = 251
    total_num_le_acl_data_packets = 8
    #: controller -> host latency range (seconds)
    latency = (0.0002, 0.0009)

    def __init__(self, name: str, *, link: ScenarioLink, public_address: str, seed: int) -> None:
        super().__init__(name, link=link, public_address=public_address)
        self.scenario_link = link
        self.rng = random.Random(seed)
        self._last_out = 0.0
        self._deferred: list[hci.HCI_Packet] | None = None
        self.lmp_features = (
            hci.LmpFeatureMask(0)
            | hci.LmpFeatureMask.EXTENDED_FEATURES
            | hci.LmpFeatureMask.SECURE_SIMPLE_PAIRING_CONTROLLER_SUPPORT
            | hci.LmpFeatureMask.ENCRYPTION
            | hci.LmpFeatureMask.EXTENDED_SCO_LINK_EV3_PACKETS
            | hci.LmpFeatureMask.SCO_LINK
            | hci.LmpFeatureMask.ENHANCED_DATA_RATE_ESCO_2_MBPS_MODE
            | hci.LmpFeatureMask.TRANSPARENT_SYNCHRONOUS_DATA
            | hci.LmpFeatureMask.LE_SUPPORTED_CONTROLLER
        )
        self.supported_commands = set(self.supported_commands) | {
            hci.HCI_INQUIRY_COMMAND,
            hci.HCI_INQUIRY_CANCEL_COMMAND,
            hci.HCI_CREATE_CONNECTION_COMMAND,
            hci.HCI_WRITE_INQUIRY_MODE_COMMAND,
            hci.HCI_WRITE_SCAN_ENABLE_COMMAND,
            hci.HCI_WRITE_PAGE_TIMEOUT_COMMAND,
            hci.HCI_WRITE_CLASS_OF_DEVICE_COMMAND,
            hci.HCI_WRITE_EXTENDED_INQUIRY_RESPONSE_COMMAND,
            hci.HCI_WRITE_SIMPLE_PAIRING_MODE_COMMAND,
            hci.HCI_WRITE_LE_HOST_SUPPORT_COMMAND,
            hci.HCI_AUTHENTICATION_REQUESTED_COMMAND,
            hci.HCI_SET_CONNECTION_ENCRYPTION_COMMAND,
            hci.HCI_ENHANCED_SETUP_SYNCHRONOUS_CONNECTION_COMMAND,
            hci.HCI_ENHANCED_ACCEPT_SYNCHRONOUS_CONNECTION_REQUEST_COMMAND,
        }
        # legacy advertising / scanning only (the hosts then use the 4.x HCI commands)
        self.le_features = self.le_features & ~(
            hci.LeFeatureMask.LE_EXTENDED_ADVERTISING | hci.LeFeatureMask.LE_PERIODIC_ADVERTISING
        )
        adv = ScenarioLegacyAdvertiser(self)
        adv.rng = random.Random(seed * 7 + 1)
        self.le_legacy_advertiser = adv
        self.class_of_device = 0
        self.eir_data = b""
        self.page_timeout = 0x2000  # slots (5.12 s)
        self.supervision_timeout = 0x7D00  # slots (20 s)
        self.scan_started_at = 0.0
        #: LE Set Extended Scan Enable on: reports are LE Extended Advertising Reports
        self.extended_scanning = False
        self.legacy_advertising = False
        #: Remote Name Requests not yet completed
        self.name_requests: set[hci.Address] = set()
        self.rssi = -60
        self.inquiry_handles: list[asyncio.TimerHandle] = []
        # auth state: peer address -> pending role
        self._auth: dict[hci.Address, str] = {}
        self._peer_auth_key: dict[hci.Address, bytes] = {}
        self.sync_params: dict[hci.Address, SyncParams] = {}
        self.sco_handles: dict[hci.Address, int] = {}
        #: faults the scenario may turn on
        self.drop_page = False
        #: non-zero: this device's link manager fails encryption with that error code
        self.fail_encryption = 0
        #: accept Write Secure Connections Host Support (see its handler)
        self.implements_sc_host_support = False

    # ------------------------------------------------------------------------------------
    # HCI transport: latency, ordering
    # ------------------------------------------------------------------------------------
    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if isinstance(packet, hci.HCI_Remote_Name_Request_Complete_Event):
            self.name_requests.discard(packet.bd_addr)
        if self._deferred is not None:
            self._deferred.append(packet)
            return
        if not self.host:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + self.rng.uniform(*self.latency)
        when = max(when, self._last_out + 2e-6)
        self._last_out = when
        data = bytes(packet)
        host = self.host
        loop.call_at(when, lambda: host.on_packet(data))

    def on_hci_command_packet(self, command: hci.HCI_Command) -> None:
        """Run the handler, then emit Command Complete/Status before any other event."""
        self._deferred = []
        try:
            op = command.op_code
            if op == HCI_SETUP_SYNCHRONOUS_CONNECTION:
                self._setup_sync_legacy(command)
            elif op == HCI_ACCEPT_SYNCHRONOUS_CONNECTION_REQUEST:
                self._accept_sync_legacy(command)
            elif op == hci.HCI_REMOTE_NAME_REQUEST_CANCEL_COMMAND:
                self._cancel_name_request(command)
            else:
                super().on_hci_command_packet(command)
        finally:
            pending, self._deferred = self._deferred, None

        def is_response(p: hci.HCI_Packet) -> bool:
            return (
                isinstance(p, hci.HCI_Command_Complete_Event | hci.HCI_Command_Status_Event)
                and p.command_opcode == command.op_code
            )

        for p in [p for p in pending if is_response(p)] + [
            p for p in pending if not is_response(p)
        ]:
            self.send_hci_packet(p)

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if isinstance(packet, hci.HCI_SynchronousDataPacket):
            self._on_host_sco_data(packet)
            return
        super().on_hci_packet(packet)

    def on_packet(self, packet: bytes) -> None:
        if packet and packet[0] == hci.HCI_COMMAND_PACKET:
            op = int.from_bytes(packet[1:3], "little")
            if op in (HCI_SETUP_SYNCHRONOUS_CONNECTION, HCI_ACCEPT_SYNCHRONOUS_CONNECTION_REQUEST):
                cmd = hci.HCI_Command(op_code=op, parameters=packet[4:])
                self.on_hci_command_packet(cmd)
                return
        super().on_packet(packet)

    def _later(self, delay: float, callback: Callable[[], Any]) -> None:
        asyncio.get_running_loop().call_later(delay, callback)

    def _peer(self, address: hci.Address) -> ScenarioController | None:
        c = self.scenario_link.find_classic_controller(address)
        return c if isinstance(c, ScenarioController) else None

    # ------------------------------------------------------------------------------------
    # Buffers, misc configuration (7.4.5, 7.3.x)
    # ------------------------------------------------------------------------------------
    def on_hci_read_buffer_size_command(
        self, _command: hci.HCI_Read_Buffer_Size_Command
    ) -> hci.HCI_Read_Buffer_Size_ReturnParameters:
        return hci.HCI_Read_Buffer_Size_ReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS,
            hc_acl_data_packet_length=self.acl_data_packet_length,
            hc_synchronous_data_packet_length=self.sco_data_packet_length,
            hc_total_num_acl_data_packets=self.total_num_acl_data_packets,
            hc_total_num_synchronous_data_packets=self.total_num_sco_data_packets,
        )

    def on_hci_write_class_of_device_command(
        self, command: hci.HCI_Write_Class_Of_Device_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.class_of_device = command.class_of_device
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_read_class_of_device_command(
        self, _command: hci.HCI_Read_Class_Of_Device_Command
    ) -> hci.HCI_Read_Class_Of_Device_ReturnParameters:
        return hci.HCI_Read_Class_Of_Device_ReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, class_of_device=self.class_of_device
        )

    def on_hci_write_extended_inquiry_response_command(
        self, command: hci.HCI_Write_Extended_Inquiry_Response_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.eir_data = bytes(command.extended_inquiry_response)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_write_secure_connections_host_support_command(
        self, command: hci.HCI_Write_Secure_Connections_Host_Support_Command
    ) -> hci.HCI_StatusReturnParameters:
        """7.3.92. The stock controller lists the command as supported but answers 0x01
        Unknown HCI Command; ``implements_sc_host_support`` (off by default, so that the
        older captures stay byte-identical) makes it accept the command like a real one."""
        if not self.implements_sc_host_support:
            return self.on_hci_command(command)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_write_inquiry_mode_command(
        self, _command: hci.HCI_Write_Inquiry_Mode_Command
    ) -> hci.HCI_StatusReturnParameters:
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_write_page_timeout_command(
        self, command: hci.HCI_Write_Page_Timeout_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.page_timeout = command.page_timeout
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    # ------------------------------------------------------------------------------------
    # Inquiry (7.1.1, 7.1.2, 7.7.1, 7.7.38)
    # ------------------------------------------------------------------------------------
    def on_hci_inquiry_command(self, command: hci.HCI_Inquiry_Command) -> None:
        self._send_hci_command_status(hci.HCI_ErrorCode.SUCCESS, command.op_code)
        loop = asyncio.get_running_loop()
        duration = command.inquiry_length * 1.28
        found = [
            c
            for c in self.scenario_link.controllers
            if isinstance(c, ScenarioController) and c is not self and c.classic_scan_enable & 1
        ]
        self.inquiry_handles = []
        for i, peer in enumerate(found):
            delay = min(duration - 0.05, 0.4 + 0.9 * i + self.rng.uniform(0.0, 0.6))
            self.inquiry_handles.append(
                loop.call_later(delay, lambda p=peer: self._inquiry_result(p))
            )
        self.inquiry_handles.append(loop.call_later(duration, self._inquiry_complete))

    def _inquiry_result(self, peer: ScenarioController) -> None:
        eir = peer.eir_data.ljust(240, b"\0")[:240]
        self.send_hci_packet(
            hci.HCI_Extended_Inquiry_Result_Event(
                num_responses=1,
                bd_addr=peer.public_address,
                page_scan_repetition_mode=1,
                reserved=0,
                class_of_device=peer.class_of_device,
                clock_offset=0x1234 & 0x7FFF,
                rssi=peer.rssi,
                extended_inquiry_response=eir,
            )
        )

    def _inquiry_complete(self) -> None:
        self.inquiry_handles = []
        self.send_hci_packet(hci.HCI_Inquiry_Complete_Event(status=hci.HCI_ErrorCode.SUCCESS))

    def on_hci_inquiry_cancel_command(
        self, _command: hci.HCI_Inquiry_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        for h in self.inquiry_handles:
            h.cancel()
        self.inquiry_handles = []
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    # ------------------------------------------------------------------------------------
    # LE Create Connection Cancel (7.8.13): the pending attempt ends with LE Connection
    # Complete, status 0x02 Unknown Connection Identifier (bumble's controller sends none)
    # ------------------------------------------------------------------------------------
    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        if self.pending_le_connection is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=0,
                peer_address=hci.Address("00:00:00:00:00:00"),
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    # ------------------------------------------------------------------------------------
    # Paging with page timeout (7.1.5)
    # ------------------------------------------------------------------------------------
    def on_hci_create_connection_command(self, command: hci.HCI_Create_Connection_Command) -> None:
        if command.bd_addr in self.classic_connections:
            # the device's own connection to us came first (7.1.5: Connection Already Exists):
            # our page completes with 0x0B once the link is there
            self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
            addr = command.bd_addr

            def exists() -> None:
                self.send_hci_packet(
                    hci.HCI_Connection_Complete_Event(
                        status=ACL_CONNECTION_ALREADY_EXISTS,
                        connection_handle=0,
                        bd_addr=addr,
                        link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
                        encryption_enabled=0,
                    )
                )

            self._later(0.004, exists)
            return None
        peer = self._peer(command.bd_addr)
        if peer is None or not peer.classic_scan_enable & 0x02 or peer.drop_page:
            self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
            addr = command.bd_addr

            def timeout() -> None:
                self.send_hci_packet(
                    hci.HCI_Connection_Complete_Event(
                        status=PAGE_TIMEOUT,
                        connection_handle=0,
                        bd_addr=addr,
                        link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
                        encryption_enabled=0,
                    )
                )

            self._later(self.page_timeout * 0.000625, timeout)
            return None
        return super().on_hci_create_connection_command(command)

    def on_hci_acl_data_packet(self, packet: hci.HCI_AclDataPacket) -> None:
        """While the radio link is broken, buffers are not freed (no Number Of Completed
        Packets), as a real controller keeps retransmitting."""
        connection = self.find_classic_connection_by_handle(packet.connection_handle)
        if connection is not None and self.scenario_link.is_broken(
            self.public_address, connection.peer_address
        ):
            return
        super().on_hci_acl_data_packet(packet)

    # ------------------------------------------------------------------------------------
    # Controller -> host ACL with fragmentation (5.4.2)
    # ------------------------------------------------------------------------------------
    def on_link_acl_data(
        self, sender_address: hci.Address, transport: PhysicalTransport, data: bytes
    ) -> None:
        if transport != PhysicalTransport.BR_EDR:
            super().on_link_acl_data(sender_address, transport, data)
            return
        connection = self.classic_connections.get(sender_address)
        if connection is None:
            return
        size = self.acl_data_packet_length
        for offset in range(0, len(data), size):
            chunk = data[offset : offset + size]
            pb = 0x02 if offset == 0 else 0x01
            self.send_hci_packet(hci.HCI_AclDataPacket(connection.handle, pb, 0, len(chunk), chunk))

    # ------------------------------------------------------------------------------------
    # Authentication with stored link keys (7.1.15, 7.1.10, 7.1.11, 7.7.23, 7.7.24)
    # ------------------------------------------------------------------------------------
    def on_hci_authentication_requested_command(
        self, command: hci.HCI_Authentication_Requested_Command
    ) -> None:
        connection = self.find_classic_connection_by_handle(command.connection_handle)
        if connection is None:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, command.op_code
            )
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        connection.ssp_state.is_initiator = True
        self._auth[connection.peer_address] = "initiator"
        self.send_hci_packet(hci.HCI_Link_Key_Request_Event(bd_addr=connection.peer_address))

    def on_hci_link_key_request_reply_command(
        self, command: hci.HCI_Link_Key_Request_Reply_Command
    ) -> hci.HCI_StatusAndAddressReturnParameters:
        addr = command.bd_addr
        role = self._auth.pop(addr, None)
        connection = self.classic_connections.get(addr)
        peer = self._peer(addr)
        if connection is not None and peer is not None and role == "initiator":
            key = bytes(command.link_key)
            me = self.public_address
            self.scenario_link.deliver(lambda: peer._on_peer_au_rand(me, key))
        elif connection is not None and role == "responder":
            self._answer_au_rand(addr, bytes(command.link_key))
        return hci.HCI_StatusAndAddressReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, bd_addr=addr
        )

    def on_hci_link_key_request_negative_reply_command(
        self, command: hci.HCI_Link_Key_Request_Negative_Reply_Command
    ) -> hci.HCI_StatusAndAddressReturnParameters:
        addr = command.bd_addr
        role = self._auth.pop(addr, None)
        if role == "responder":
            self._answer_au_rand(addr, None)
            return hci.HCI_StatusAndAddressReturnParameters(
                status=hci.HCI_ErrorCode.SUCCESS, bd_addr=addr
            )
        return super().on_hci_link_key_request_negative_reply_command(command)

    def _on_peer_au_rand(self, initiator: hci.Address, key: bytes) -> None:
        """Responder side: the initiator sent LMP_au_rand; ask our host for its key."""
        if initiator not in self.classic_connections:
            return
        self._auth[initiator] = "responder"
        self._peer_auth_key[initiator] = key
        self.send_hci_packet(hci.HCI_Link_Key_Request_Event(bd_addr=initiator))

    def _answer_au_rand(self, initiator: hci.Address, key: bytes | None) -> None:
        expected = self._peer_auth_key.pop(initiator, None)
        if key is None:
            status = PIN_OR_KEY_MISSING  # LMP_not_accepted(PIN or Key Missing)
        elif key != expected:
            status = AUTHENTICATION_FAILURE  # SRES mismatch
        else:
            status = hci.HCI_ErrorCode.SUCCESS
            if conn := self.classic_connections.get(initiator):
                conn.ssp_state.link_key = key
        peer = self._peer(initiator)
        me = self.public_address
        if peer is not None:
            self.scenario_link.deliver(lambda: peer._on_auth_result(me, status))

    def _on_auth_result(self, responder: hci.Address, status: int) -> None:
        connection = self.classic_connections.get(responder)
        if connection is None:
            return
        self.send_hci_packet(
            hci.HCI_Authentication_Complete_Event(
                status=status, connection_handle=connection.handle
            )
        )

    # ------------------------------------------------------------------------------------
    # Encryption (7.1.16, 7.7.8)
    # ------------------------------------------------------------------------------------
    def on_hci_set_connection_encryption_command(
        self, command: hci.HCI_Set_Connection_Encryption_Command
    ) -> None:
        connection = self.find_classic_connection_by_handle(command.connection_handle)
        if connection is None:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, command.op_code
            )
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        enable = command.encryption_enable
        peer = self._peer(connection.peer_address)
        me = self.public_address
        if enable and peer is not None and peer.fail_encryption:
            code = peer.fail_encryption
            # 0x22: the peer never answers LMP_encryption_mode_req, the initiator's LMP
            # response timer expires; otherwise the peer answers LMP_not_accepted(code)
            delay = LMP_RESPONSE_TIMEOUT_S if code == LMP_RESPONSE_TIMEOUT else 0.004
            addr = connection.peer_address
            self._later(delay, lambda: self._encryption_change(addr, 0, code))
            return

        def done() -> None:
            self._encryption_change(connection.peer_address, enable)
            if peer is not None:
                peer._encryption_change(me, enable)

        self.scenario_link.deliver(done, 0.004)

    def _encryption_change(
        self, peer: hci.Address, enable: int, status: int = hci.HCI_ErrorCode.SUCCESS
    ) -> None:
        if connection := self.classic_connections.get(peer):
            self.send_hci_packet(
                hci.HCI_Encryption_Change_Event(
                    status=status,
                    connection_handle=connection.handle,
                    encryption_enabled=enable,
                )
            )

    # ------------------------------------------------------------------------------------
    # Reset (7.3.2) and Hardware Error (7.7.16)
    # ------------------------------------------------------------------------------------
    def on_hci_reset_command(
        self, command: hci.HCI_Reset_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Reset drops every link at once: no Disconnection Complete to our host (the links
        simply no longer exist), no LMP_detach to the peers, which notice the silence when
        their own supervision timeout expires."""
        me = self.public_address
        for peer_address in list(self.classic_connections):
            self.classic_connections.pop(peer_address, None)
            self.sco_links.pop(peer_address, None)
            peer = self._peer(peer_address)
            if peer is not None:
                delay = peer.supervision_timeout * 0.000625
                self._later(delay, lambda p=peer: p._supervision_timeout(me))
        self._auth.clear()
        self._peer_auth_key.clear()
        self.sync_params.clear()
        self.le_legacy_advertiser.stop()
        self.le_scan_enable = 0
        for h in self.inquiry_handles:
            h.cancel()
        self.inquiry_handles = []
        return super().on_hci_reset_command(command)

    def hardware_error(self, code: int) -> None:
        """The controller reports a fault of its own (Hardware_Code is vendor specific)."""
        self.send_hci_packet(
            hci.HCI_Event(event_code=HCI_HARDWARE_ERROR_EVENT, parameters=bytes([code]))
        )

    # ------------------------------------------------------------------------------------
    # Remote version (7.1.23, 7.7.12)
    # ------------------------------------------------------------------------------------
    def on_hci_read_remote_version_information_command(
        self, command: hci.HCI_Read_Remote_Version_Information_Command
    ) -> None:
        connection = self.find_classic_connection_by_handle(command.connection_handle)
        if connection is None:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, command.op_code
            )
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        peer = self._peer(connection.peer_address)
        if peer is None:
            return

        def done() -> None:
            self.send_hci_packet(
                hci.HCI_Read_Remote_Version_Information_Complete_Event(
                    status=hci.HCI_ErrorCode.SUCCESS,
                    connection_handle=connection.handle,
                    version=peer.lmp_version,
                    manufacturer_name=peer.manufacturer_company_identifier,
                    subversion=peer.lmp_subversion,
                )
            )

        self.scenario_link.deliver(done, 0.0025)

    # ------------------------------------------------------------------------------------
    # Supervision timeout (Vol 2 Part B 3.1; 7.7.5 reason 0x08)
    # ------------------------------------------------------------------------------------
    def break_link(self, peer_address: hci.Address, timeout: float | None = None) -> None:
        """The radio link to ``peer_address`` dies now; both sides time out later."""
        peer = self._peer(peer_address)
        self.scenario_link.broken.add(frozenset((self.public_address, peer_address)))
        delay = self.supervision_timeout * 0.000625 if timeout is None else timeout
        me = self.public_address

        def expire() -> None:
            self._supervision_timeout(peer_address)
            if peer is not None:
                peer._supervision_timeout(me)
            self.scenario_link.broken.discard(frozenset((me, peer_address)))

        self._later(delay, expire)

    def _supervision_timeout(self, peer: hci.Address) -> None:
        if sco := self.sco_links.pop(peer, None):
            self.send_hci_packet(
                hci.HCI_Disconnection_Complete_Event(
                    status=0, connection_handle=sco.handle, reason=CONNECTION_TIMEOUT
                )
            )
        self.on_classic_disconnected(peer, CONNECTION_TIMEOUT)

    # ------------------------------------------------------------------------------------
    # LE scanning with duty cycle, legacy reports (7.8.10, 7.8.11, 7.7.65.2)
    # ------------------------------------------------------------------------------------
    def on_hci_le_set_scan_enable_command(
        self, command: hci.HCI_LE_Set_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        if command.le_scan_enable and not self.le_scan_enable:
            self.scan_started_at = asyncio.get_running_loop().time()
        return super().on_hci_le_set_scan_enable_command(command)

    def on_hci_le_set_extended_scan_parameters_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Parameters_Command
    ) -> hci.HCI_StatusReturnParameters:
        """7.8.64: the first PHY's interval and window drive the duty cycle, as for 7.8.10."""
        if command.scan_intervals:
            self.le_scan_interval = command.scan_intervals[0]
            self.le_scan_window = command.scan_windows[0]
            self.le_scan_type = command.scan_types[0]
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_hci_le_set_extended_scan_enable_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        if command.enable and not self.le_scan_enable:
            self.scan_started_at = asyncio.get_running_loop().time()
        self.extended_scanning = bool(command.enable)
        return super().on_hci_le_set_extended_scan_enable_command(command)

    # ------------------------------------------------------------------------------------
    # Random address (7.8.4) refused while legacy advertising or scanning is enabled
    # ------------------------------------------------------------------------------------
    def on_hci_le_set_advertising_enable_command(
        self, command: hci.HCI_LE_Set_Advertising_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.legacy_advertising = bool(command.advertising_enable)
        return super().on_hci_le_set_advertising_enable_command(command)

    def on_hci_le_set_random_address_command(
        self, command: hci.HCI_LE_Set_Random_Address_Command
    ) -> hci.HCI_StatusReturnParameters:
        if self.legacy_advertising or self.le_scan_enable:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        return super().on_hci_le_set_random_address_command(command)

    # ------------------------------------------------------------------------------------
    # Remote Name Request (7.1.19) and its Cancel (7.1.20)
    # ------------------------------------------------------------------------------------
    def on_hci_remote_name_request_command(
        self, command: hci.HCI_Remote_Name_Request_Command
    ) -> None:
        self.name_requests.add(command.bd_addr)
        return super().on_hci_remote_name_request_command(command)

    def _cancel_name_request(self, command: hci.HCI_Command) -> None:
        """7.1.20: with nothing pending for that address (the name came first) the cancel is
        answered Unknown Connection Identifier (0x02); Command Complete returns the address."""
        params = bytes(command.parameters or b"")
        addr = hci.Address(params[:6]) if len(params) >= 6 else hci.Address.ANY
        status = 0 if addr in self.name_requests else 0x02
        self.send_hci_packet(
            hci.HCI_Command_Complete_Event(
                num_hci_command_packets=1,
                command_opcode=command.op_code,
                return_parameters=bytes([status]) + params[:6],
            )
        )

    def scan_window_open(self, now: float) -> bool:
        interval = self.le_scan_interval * 0.000625
        window = self.le_scan_window * 0.000625
        if window >= interval:
            return True
        return (now - self.scan_started_at) % interval < window

    def on_advertising_pdu(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        if isinstance(pdu, ll.AdvExtInd) or not self.le_scan_enable:
            super().on_advertising_pdu(pdu)
            return
        now = asyncio.get_running_loop().time()
        if not self.scan_window_open(now):
            return
        advertiser = self.scenario_link.find_le_controller(pdu.advertiser_address)
        rssi = advertiser.rssi if isinstance(advertiser, ScenarioController) else -60
        rssi += self.rng.randint(-3, 3)
        if self.extended_scanning:
            self._extended_report(pdu, rssi, advertiser)
            return
        report = hci.HCI_LE_Advertising_Report_Event.Report(
            event_type=hci.HCI_LE_Advertising_Report_Event.EventType.ADV_IND,
            address_type=pdu.advertiser_address.address_type,
            address=pdu.advertiser_address,
            data=pdu.data,
            rssi=rssi,
        )
        self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([report]))
        if self.le_scan_type == 1 and advertiser is not None:
            rsp = hci.HCI_LE_Advertising_Report_Event.Report(
                event_type=hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP,
                address_type=pdu.advertiser_address.address_type,
                address=pdu.advertiser_address,
                data=advertiser.le_legacy_advertiser.scan_response_data,
                rssi=rssi,
            )
            self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([rsp]))

    def _extended_report(self, pdu: ll.AdvInd, rssi: int, advertiser: object) -> None:
        """A legacy ADV_IND heard by an extended scan: LE Extended Advertising Report (7.7.65.13)
        with Event_Type 0x13 (legacy, connectable, scannable), no ADI (SID 0xFF)."""
        ev = hci.HCI_LE_Extended_Advertising_Report_Event
        kinds = [0x13]
        if self.le_scan_type == 1 and isinstance(advertiser, ScenarioController):
            kinds.append(0x1B)  # legacy SCAN_RSP to an ADV_IND
        for et in kinds:
            data = pdu.data if et == 0x13 else advertiser.le_legacy_advertiser.scan_response_data  # type: ignore[union-attr]
            report = ev.Report(
                event_type=et,
                address_type=pdu.advertiser_address.address_type,
                address=pdu.advertiser_address,
                primary_phy=hci.Phy.LE_1M,
                secondary_phy=0,
                advertising_sid=ev.NO_ADI_FIELD_PROVIDED,
                tx_power=ev.TX_POWER_INFORMATION_NOT_AVAILABLE,
                rssi=rssi,
                periodic_advertising_interval=0,
                direct_address_type=0,
                direct_address=hci.Address.ANY,
                data=data,
            )
            self.send_hci_packet(ev([report]))

    # ------------------------------------------------------------------------------------
    # Synchronous connections (7.1.26-28, 7.1.45-46, 7.7.35) and SCO data (5.4.3)
    # ------------------------------------------------------------------------------------
    def on_hci_enhanced_setup_synchronous_connection_command(
        self, command: hci.HCI_Enhanced_Setup_Synchronous_Connection_Command
    ) -> None:
        connection = self.find_classic_connection_by_handle(command.connection_handle)
        coding = command.transmit_coding_format
        coding_id = getattr(coding, "codec_id", coding)
        params = _sync_params_from_setup(command.packet_type, None, int(coding_id))
        if connection is not None and coding_id == hci.CodecID.MSBC:
            params.air_mode = 0x03
        self._setup_sync(connection, command.op_code, params)

    def _setup_sync_legacy(self, command: hci.HCI_Command) -> None:
        p = bytes(command.parameters)
        handle = int.from_bytes(p[0:2], "little")
        voice_setting = int.from_bytes(p[12:14], "little")
        packet_type = int.from_bytes(p[15:17], "little")
        connection = self.find_classic_connection_by_handle(handle)
        params = _sync_params_from_setup(packet_type, voice_setting, None)
        self._setup_sync(connection, command.op_code, params)

    def _setup_sync(self, connection: Connection | None, op_code: int, params: SyncParams) -> None:
        if connection is None:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, op_code
            )
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, op_code)
        peer = self._peer(connection.peer_address)
        if peer is None:
            return
        self.sync_params[connection.peer_address] = params
        me = self.public_address
        cod = self.class_of_device
        self.scenario_link.deliver(lambda: peer._on_sync_request(me, params, cod))

    def _on_sync_request(self, initiator: hci.Address, params: SyncParams, cod: int) -> None:
        """Connection Request (7.7.4) for the SCO/eSCO link, with the initiator's class."""
        self.sync_params[initiator] = params
        link_type = (
            hci.HCI_Connection_Complete_Event.LinkType.ESCO
            if params.link_type == 0x02
            else hci.HCI_Connection_Complete_Event.LinkType.SCO
        )
        self.send_hci_packet(
            hci.HCI_Connection_Request_Event(
                bd_addr=initiator, class_of_device=cod, link_type=link_type
            )
        )

    def on_hci_enhanced_accept_synchronous_connection_request_command(
        self, command: hci.HCI_Enhanced_Accept_Synchronous_Connection_Request_Command
    ) -> None:
        self._accept_sync(command.bd_addr, command.op_code)

    def _accept_sync_legacy(self, command: hci.HCI_Command) -> None:
        addr = hci.Address.parse_address(bytes(command.parameters), 0)[1]
        self._accept_sync(addr, command.op_code)

    def _accept_sync(self, addr: hci.Address, op_code: int) -> None:
        params = self.sync_params.get(addr)
        peer = self._peer(addr)
        if params is None or peer is None or addr not in self.classic_connections:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, op_code
            )
            return
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, op_code)
        me = self.public_address

        def complete() -> None:
            self._sync_complete(addr, params)
            peer._sync_complete(me, params)

        self.scenario_link.deliver(complete, 0.006)

    def _sync_complete(self, peer: hci.Address, params: SyncParams) -> None:
        handle = self.allocate_connection_handle()
        from bumble.controller import ScoLink

        self.sco_links[peer] = ScoLink(handle=handle, link_type=params.link_type, peer_address=peer)
        self.send_hci_packet(
            hci.HCI_Synchronous_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.SUCCESS,
                connection_handle=handle,
                bd_addr=peer,
                link_type=params.link_type,
                transmission_interval=params.transmission_interval,
                retransmission_window=params.retransmission_window,
                rx_packet_length=params.packet_length,
                tx_packet_length=params.packet_length,
                air_mode=params.air_mode,
            )
        )

    def on_hci_disconnect_command(self, command: hci.HCI_Disconnect_Command) -> None:
        sco = self.find_classic_sco_link_by_handle(command.connection_handle)
        if sco is None:
            return super().on_hci_disconnect_command(command)
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        peer = self._peer(sco.peer_address)
        me = self.public_address
        reason = command.reason

        def done() -> None:
            self._sco_disconnected(sco.peer_address, reason)
            if peer is not None:
                peer._sco_disconnected(
                    me, hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
                )

        self.scenario_link.deliver(done, 0.003)
        return None

    def _sco_disconnected(self, peer: hci.Address, reason: int) -> None:
        if sco := self.sco_links.pop(peer, None):
            self.send_hci_packet(
                hci.HCI_Disconnection_Complete_Event(
                    status=0, connection_handle=sco.handle, reason=reason
                )
            )

    def _on_host_sco_data(self, packet: hci.HCI_SynchronousDataPacket) -> None:
        sco = self.find_classic_sco_link_by_handle(packet.connection_handle)
        if sco is None:
            return
        self.scenario_link.send_sco_data(self, sco.peer_address, bytes(packet.data))

    def on_link_sco_data(self, sender: hci.Address, data: bytes) -> None:
        sco = self.sco_links.get(sender)
        if sco is None:
            return
        self.send_hci_packet(
            hci.HCI_SynchronousDataPacket(
                connection_handle=sco.handle,
                packet_status=hci.HCI_SynchronousDataPacket.Status.CORRECTLY_RECEIVED_DATA,
                data_total_length=len(data),
                data=data,
            )
        )
