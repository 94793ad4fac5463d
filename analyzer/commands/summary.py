"""``btanalyze summary STORE``: what a results store holds — captures by status, findings by id
and device, captures that failed, and per device the firmware versions seen over time."""

from __future__ import annotations

import click

from analyzer.commands.common import fail_input


@click.command("summary")
@click.argument("store", type=str)
def command(store: str) -> None:
    """Summarise the results store STORE."""
    import polars as pl

    from analyzer.store import Store

    st = Store(store)
    if not (st.root / "captures").is_dir():
        fail_input(f"{store}: not a results store (no captures/ folder; see btanalyze batch)")
    caps = st.captures()
    click.echo(f"{caps.height} captures in {store}")
    for status, n in caps.group_by("status").len().sort("len", descending=True).iter_rows():
        click.echo(f"  {status}: {n}")
    bad = caps.filter(pl.col("status") != "ok")
    if bad.height:
        click.echo("\nCaptures that could not be analysed:")
        for path, status, error in bad.select("path", "status", "error").iter_rows():
            click.echo(f"  {path}: {status}: {error}")
    f = st.read("findings")
    if f.height:
        click.echo("\nFindings by id and severity (captures, devices):")
        g = (
            f.group_by("id", "severity")
            .agg(
                pl.col("capture_id").n_unique().alias("captures"),
                pl.col("address").drop_nulls().n_unique().alias("devices"),
                pl.col("count").sum().alias("count"),
            )
            .sort(["captures", "id"], descending=[True, False])
        )
        for fid, sev, ncap, ndev, cnt in g.iter_rows():
            click.echo(f"  {fid:<26} {sev:<8} {ncap:>4} captures {ndev:>4} devices  x{cnt}")
    hist = st.read("device_history")
    if hist.height:
        click.echo("\nFirmware seen per device (in capture time order):")
        for (addr,), g in hist.group_by(["address"], maintain_order=True):
            vers: list[tuple[object, object]] = []
            for r in g.iter_rows(named=True):
                v = (r["lmp_version"], r["lmp_subversion"])
                if v != (None, None) and (not vers or vers[-1] != v):
                    vers.append(v)
            name = next((n for n in g["name"].to_list() if n), "")
            shown = " → ".join(
                f"{lv}/{sub:#06x}" if isinstance(sub, int) else f"{lv}" for lv, sub in vers
            )
            click.echo(f"  {addr} {name}: {g.height} captures; {shown or 'no version seen'}")
    sf = st.read("store_findings")
    if sf.height:
        click.echo("\nAcross captures:")
        for m in sf["message"].to_list():
            click.echo(f"  {m}")
