"""``btanalyze dashboard [CAPTURE…] [--store DIR]``: the web dashboard (docs/dashboard.md).

Captures given on the command line are analysed into the store first (any size: read from disk,
not uploaded). Without ``--store`` a temporary folder is used and removed at exit. Serves on
localhost unless told otherwise; binding elsewhere prints a warning (there is no login)."""

from __future__ import annotations

import shutil
import tempfile

import click

from analyzer.commands.batch import _bytes
from analyzer.commands.common import fail_input
from analyzer.store.batch import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT_S


@click.command("dashboard")
@click.argument("captures", nargs=-1, type=str)
@click.option("--store", "store_dir", default=None, help="Results store folder to read and add to.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--max-upload", default="500M", show_default=True, help="Largest upload.")
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds one capture's analysis may take; over it the capture fails, the rest go on.",
)
@click.option(
    "--max-memory",
    default=DEFAULT_MAX_MEMORY,
    show_default=True,
    help="Memory bound of the analysing worker (0: none); over it the capture fails.",
)
@click.option(
    "--retention-days", default=7.0, show_default=True, type=float,
    help="Delete uploads (they hold keys and phone numbers) older than this; 0 keeps them.",
)  # fmt: skip
@click.option(
    "--anonymize", is_flag=True,
    help="Analyse scrubbed copies of the captures and uploads (docs/scrub.md): the pages and "
    "the exports name only fake addresses and placeholder names.",
)  # fmt: skip
@click.option(
    "--url-prefix", default="/", show_default=True,
    help="Serve under this path (behind a reverse proxy that passes /PREFIX/... through).",
)  # fmt: skip
def command(
    captures: tuple[str, ...],
    store_dir: str | None,
    host: str,
    port: int,
    max_upload: str,
    timeout: float,
    max_memory: str,
    retention_days: float,
    anonymize: bool,
    url_prefix: str,
) -> None:
    """Start the dashboard; open http://HOST:PORT/ in a browser."""
    from analyzer.dashboards import create_app, normal_prefix
    from analyzer.store import Store

    try:
        prefix = normal_prefix(url_prefix)
    except ValueError as exc:
        fail_input(str(exc))
    from analyzer.store.batch import run_batch

    tmp = None
    if store_dir is None:
        tmp = tempfile.mkdtemp(prefix="btanalyze-dashboard-")
        store_dir = tmp
    try:
        if captures:
            stats = run_batch(
                list(captures), Store(store_dir), workers=1, timeout_s=timeout,
                memory_bytes=_bytes(max_memory), anonymize=anonymize,
            )  # fmt: skip
            click.echo(stats.line(), err=True)
        import logging
        import secrets

        token = None
        if host not in ("127.0.0.1", "localhost", "::1"):
            token = secrets.token_urlsafe(16)
            click.echo(
                f"btanalyze: warning: serving on {host}: whoever has the link below can upload "
                "captures and read every stored analysis",
                err=True,
            )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
        app = create_app(
            store_dir, max_upload=_bytes(max_upload), retention_days=retention_days, token=token,
            url_prefix=prefix, anonymize=anonymize, timeout_s=timeout,
            memory_bytes=_bytes(max_memory),
        )  # fmt: skip
        url = f"http://{host}:{port}{prefix}" + (f"?token={token}" if token else "")
        click.echo(f"btanalyze dashboard: {url}", err=True)
        app.run(host=host, port=port, debug=False)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
