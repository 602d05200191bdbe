"""``gridmap serve`` and ``gridmap keys``: the HTTP service and its API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.app import DbOpt, JsonOpt, _print_json, _run, app, console, err_console

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
