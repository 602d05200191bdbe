"""``gridmap serve`` and ``gridmap keys``: the HTTP service and its API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.app import (
    DbOpt,
    JsonOpt,
    _fail,
    _print_json,
    _run,
    app,
    console,
    err_console,
)

__all__: list[str] = []


# --------------------------------------------------------------------------- HTTP service

keys_app = typer.Typer(help="API keys of the HTTP service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    preload: Annotated[
        bool,
        typer.Option(
            "--preload/--no-preload",
            help="With --workers: load the published plans once, then fork the workers so "
            "that they share that memory (POSIX); --no-preload starts each worker afresh.",
        ),
    ] = True,
    demo: Annotated[
        bool, typer.Option("--demo", help="Create an admin key and print it at start-up.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs); settings from GRIDMAP_* variables."""

    def body() -> None:
        import os

        import uvicorn

        from gridmap.api import Settings, create_app
        from gridmap.db import Store, database_url
        from gridmap.db.keys import create_key

        url = database_url(db)
        if demo:
            from gridmap.db import list_plans, save_layers, save_plan

            with Store.from_url(url) as store:
                if not list_plans(store, status="published"):
                    from gridmap.partition import partition
                    from gridmap.staffing import assign_staff
                    from gridmap.synth import synth_city
                    from gridmap.validation import validate_layers

                    with console.status("empty store: publishing a synthetic demo city…"):
                        layers, _ = validate_layers(synth_city(n_buildings=400, seed=0))
                        plan = partition(layers, seed=0)
                        if layers.staff is not None:
                            plan = assign_staff(plan, layers.staff).to_plan(plan)
                        save_layers(store, layers, author="gridmap serve --demo")
                        save_plan(store, plan, author="gridmap serve --demo", status="published")
                _, token = create_key(
                    store, name="demo admin", role="admin", author="gridmap serve"
                )
            console.print(f"[bold]demo admin key[/] (shown once): {token}", soft_wrap=True)
        console.print(
            f"serving {url.split('@')[-1]} on http://{host}:{port}/ (docs: /docs; maps in a "
            "browser: /login)"
        )
        if workers > 1 and preload and hasattr(os, "fork"):
            _serve_forked(
                Settings(database_url=url), host=host, port=port, workers=workers, log=log_level
            )
            return
        if workers > 1:
            os.environ["GRIDMAP_DATABASE_URL"] = url
            uvicorn.run(
                "gridmap.api.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
            )
            return
        uvicorn.run(
            create_app(Settings(database_url=url, demo=demo)),
            host=host,
            port=port,
            log_level=log_level,
        )

    _run(body)


def _serve_forked(settings: Any, *, host: str, port: int, workers: int, log: str) -> None:
    """Load the published plans, then fork ``workers`` uvicorn servers sharing that memory.

    The parent opens the store, loads the snapshot (:func:`gridmap.api.locator.preload`)
    and builds the app, then closes the store's connections (none crosses a fork:
    each worker opens its own on first use), binds the socket and freezes the
    garbage collector's view of its objects (collections in the workers then leave
    the shared pages alone). Each forked worker serves the socket; its locator starts
    from the snapshot (:func:`gridmap.api.locator.adopt`) and rebuilds only plans
    published since. A plan published later is rebuilt by each worker in its own
    memory. The parent restarts a worker that dies (not one that fails at start-up:
    then it stops them all and exits with an error), and stops them all on
    SIGINT/SIGTERM.
    """
    import gc
    import logging
    import os
    import signal
    import sys
    import time

    import uvicorn

    from gridmap.api import create_app
    from gridmap.api.locator import adopt, preload
    from gridmap.db import Store

    log_ = logging.getLogger("gridmap.serve")
    store = Store.from_url(settings.database_url, schema=settings.database_schema)
    adopt(preload(store, tolerance=settings.locate_tolerance_m), store)
    config = uvicorn.Config(create_app(settings, store=store), host=host, port=port, log_level=log)
    config.load()  # the protocol modules and the app's middleware, imported once
    sock = config.bind_socket()
    store.engine.dispose()  # no connection crosses the fork
    gc.collect()
    gc.freeze()  # collections in the workers leave the parent's objects (and pages) alone
    sys.stdout.flush()  # or a worker would write the parent's buffered output again
    sys.stderr.flush()

    def worker() -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own
        uvicorn.Server(config).run(sockets=[sock])
        return 0

    children: dict[int, float] = {}
    stopping = False

    def start() -> None:
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            code = 1
            try:
                code = worker()
            except BaseException:
                log_.exception("worker %d failed", os.getpid())
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for _ in range(workers):
        start()
    failed = None
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        if time.monotonic() - started < 10:  # dies at start-up: restarting would loop
            failed = f"worker {pid} exited with {code} during start-up; its log says why"
            stop(signal.SIGTERM, None)
            continue
        log_.warning("worker %d exited with %d; starting another", pid, code)
        start()
    sock.close()
    store.close()
    if failed is not None:
        raise _fail(failed)


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str, typer.Option(help="viewer | staff | auditor | dispatcher | planner | admin.")
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "cli",
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            help="Bind the key to an org unit: grid:CODE, community:ID, subdistrict:CODE or "
            "department:CODE (required for staff).",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="When the key stops working: a date (2027-06-30, end of day, Beijing time), "
            "a date-time or a number of days (90d). Never by default.",
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import create_key

        with Store.from_url(database_url(db)) as store:
            rec, token = create_key(
                store,
                name=name,
                role=role,
                author="gridmap keys create",
                scope=scope,
                expires_at=expires,
            )
        bound = f", {rec.scope}" if rec.scope else ""
        if rec.expires_at is not None:
            bound += f", expires {rec.expires_at:%Y-%m-%d %H:%M} UTC"
        err_console.print(
            f"key {rec.id} ({rec.role}{bound}, {rec.name!r}); store it now, it is not shown again:"
        )
        typer.echo(token)

    _run(body)


@keys_app.command("list")
def keys_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys (never the tokens)."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import list_keys

        with Store.from_url(database_url(db)) as store:
            recs = list_keys(store)
        if as_json:
            _print_json(recs)
            return
        table = Table(title="API keys (times UTC)")
        for col in ("id", "prefix", "name", "role", "created", "expires", "last used", "active"):
            table.add_column(col)

        def when(value: object) -> str:
            return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"

        for r in recs:
            state = "yes" if r.active else ("revoked" if r.revoked_at else "expired")
            table.add_row(
                str(r.id),
                r.prefix,
                r.name,
                r.role,
                when(r.created_at),
                when(r.expires_at),
                when(r.last_used_at),
                state,
            )
        console.print(table)

    _run(body)


@keys_app.command("rotate")
def keys_rotate(key_id: Annotated[int, typer.Argument(help="Key id.")], db: DbOpt = None) -> None:
    """Give a key a new secret and print it once; the old secret and its sessions end now."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import rotate_key

        with Store.from_url(database_url(db)) as store:
            rec, token = rotate_key(store, key_id, author="gridmap keys rotate")
        err_console.print(
            f"key {rec.id} ({rec.role}, {rec.name!r}) has a new secret; the old one no longer "
            "works. Store this now, it is not shown again:"
        )
        typer.echo(token)

    _run(body)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id.")], db: DbOpt = None) -> None:
    """Revoke an API key."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import revoke_key

        with Store.from_url(database_url(db)) as store:
            rec = revoke_key(store, key_id, author="gridmap keys revoke")
        console.print(f"key {rec.id} ({rec.name!r}) revoked; its browser sessions ended")

    _run(body)


@keys_app.command("unlock")
def keys_unlock(
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="A key prefix (the prefix column of gridmap keys list)."),
    ] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", help="A client address (as the server saw it, e.g. 203.0.113.9)."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every locked-out address and key prefix.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Lift a lockout after wrong keys (429) now, and forget the failures counted (audited)."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.ratelimit import unlock

        with Store.from_url(database_url(db)) as store:
            cleared = unlock(
                store,
                author="gridmap keys unlock",
                prefix=prefix,
                address=client,
                everything=everything,
            )
        if not cleared:
            what = f"key prefix {prefix}" if prefix else f"address {client}" if client else "anyone"
            console.print(f"nothing to unlock: no wrong keys are counted for {what}")
            return
        for c in cleared:
            kind, _, name = c["bucket"].removeprefix("auth-fail:").partition(":")
            who = f"key prefix {name}" if kind == "prefix" else f"address {name}"
            state = f"was locked for {c['locked_s']:.0f} s more" if c["locked_s"] else "not locked"
            console.print(f"unlocked {who} ({c['count']} failures counted, {state})")

    _run(body)
