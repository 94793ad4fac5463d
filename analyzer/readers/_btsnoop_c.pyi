"""Types of the compiled record walks and gathers (``_btsnoop_c.c``)."""

from typing_extensions import Buffer

def columns(
    buf: Buffer,
    start: int,
    limit: int,
    flag_mask: int,
    flag_max: int,
    max_record: int,
    datalink: int,
    epoch_delta: int,
    luts: Buffer,
    offset: Buffer,
    time_us: Buffer,
    length: Buffer,
    orig_length: Buffer,
    kind: Buffer,
    direction: Buffer,
    adapter: Buffer,
    heads: Buffer,
) -> tuple[int, int, int, int, int, int]: ...
def gather(buf: Buffer, offsets: Buffer, width: int, out: Buffer) -> None: ...
def gather_runs(buf: Buffer, offsets: Buffer, lengths: Buffer, out: Buffer) -> None: ...
def pcap_walk(
    buf: Buffer, start: int, limit: int, big: bool, max_incl: int, out: Buffer
) -> tuple[int, int, int]: ...
def ng_walk(
    buf: Buffer, start: int, limit: int, big: bool, n_ifaces: int, out: Buffer
) -> tuple[int, int, int]: ...
