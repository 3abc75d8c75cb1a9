"""The `lessonloop` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from shared import logs
from shared.settings import Settings, get_settings


def _refused(command: str, settings: Settings, host: str | None = None) -> bool:
    """The start-up check: the public default token secret only on the embedded local setup."""
    from shared.auth import dev_secret_refusal

    reason = dev_secret_refusal(settings, host=host)
    if reason:
        print(f"lessonloop {command}: {reason}", file=sys.stderr)
    return reason is not None


def _up(args: argparse.Namespace) -> int:
    settings = get_settings()
    if _refused("up", settings):
        return 2
    from lessonloop.stack import Stack, StackError

    stack = Stack(settings, port=args.port, with_workers=not args.no_workers)
    try:
        eps = stack.start()
    except StackError as exc:
        stack.stop()
        print(f"lessonloop up: {exc}", file=sys.stderr)
        return 1
    print(f"Lessonloop is up on {stack.base_url} (API + portal; workers: {'on' if stack.with_workers else 'off'})")
    from lessonloop.stack import create_first_admin

    if first_password := create_first_admin(eps.database_url):
        print(f"  portal {stack.base_url}/portal/ first user: admin / {first_password}  (shown once; "
              "more with `lessonloop users create`)")
    print(f"  database: {eps.database_url}\n  redis:    {eps.redis_url}\n  Ctrl-C stops everything.")
    try:
        while all(p.poll() is None for p in stack.children.values()):
            time.sleep(0.5)
        failed = [n for n, p in stack.children.items() if p.poll() is not None]
        print(f"lessonloop up: {', '.join(failed)} exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        stack.stop()


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    if _refused("serve", settings, host=args.host):
        return 2
    import uvicorn

    from lessonloop.app import create_app

    logs.configure(settings.log_level, secrets=(settings.auth.token_secret,))
    uvicorn.run(create_app(settings), host=args.host, port=args.port, **server_options(settings))
    return 0


def server_options(settings: Settings) -> dict[str, Any]:
    """What `serve` gives uvicorn besides the app and the address: no logging setup of its own
    (shared.logs'), and X-Forwarded-For believed only from the trusted proxies."""
    return {"log_config": None, "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 5,
            "proxy_headers": True, "forwarded_allow_ips": settings.serving.forwarded_allow_ips}


def _worker(args: argparse.Namespace) -> int:
    """Run a worker (lessonloop/workers.py: its metrics endpoint, started again after a store outage)."""
    from lessonloop import workers

    workers.install_event_loop()
    settings = get_settings()
    logs.configure(settings.log_level, secrets=(settings.auth.token_secret,))
    return workers.run(args.kind)


def _token(args: argparse.Namespace) -> int:
    from shared.auth import mint_token

    settings = get_settings()
    if _refused("token", settings):
        return 2
    print(mint_token(settings.auth, sub=args.sub, role=args.role, ttl_s=args.ttl))
    return 0


def _with_db(fn: Any) -> Any:
    """Run `fn(conn)` against the configured (or embedded) database, migrated, in one transaction."""
    import psycopg
    from psycopg.rows import dict_row

    from shared.db import migrate
    from shared.runtime import resolve_endpoints

    eps, _ = resolve_endpoints(get_settings())
    migrate.upgrade(eps.database_url)

    async def run() -> Any:
        async with await psycopg.AsyncConnection.connect(eps.database_url, row_factory=dict_row) as conn:
            out = await fn(conn)
            await conn.commit()
            return out

    return asyncio.run(run())


def _curriculum_load(args: argparse.Namespace) -> int:
    from factory.offline.curriculum_file import CurriculumError, load_curriculum
    from shared.db import courses

    try:
        data = load_curriculum(Path(args.file))
    except (CurriculumError, OSError) as exc:
        print(f"lessonloop curriculum load: {args.file}: {exc}", file=sys.stderr)
        return 2
    _n_courses, n_skills = _with_db(lambda conn: courses.save_curriculum(conn, data))
    print(f"loaded course '{data['course']['id']}' with {n_skills} skills")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from review_portal.ingestion import ingest
    from shared.db import migrate
    from shared.db.pool import open_async_pool
    from shared.runtime import resolve_endpoints

    settings = get_settings()
    eps, _ = resolve_endpoints(settings)
    migrate.upgrade(eps.database_url)

    async def run() -> dict[str, Any]:
        pool = await open_async_pool(eps.database_url, settings.database, min_size=1,
                                     timeout=settings.database.worker_connect_timeout)
        try:
            return await ingest(pool, embedding_model=settings.factory.embedding)
        finally:
            await pool.close()

    print(json.dumps(asyncio.run(run())))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from shared.db import migrate
    from shared.runtime import resolve_endpoints

    eps, _ = resolve_endpoints(get_settings())
    migrate.upgrade(eps.database_url, args.revision)
    print(f"database at revision {migrate.current_revision(eps.database_url)}")
    return 0


def _services(args: argparse.Namespace) -> int:
    from shared.runtime import EmbeddedServices

    svc = EmbeddedServices(get_settings().data_dir)
    if args.action == "start":
        eps = svc.start()
        print(json.dumps(eps.__dict__))
    elif args.action == "stop":
        svc.stop()
        print("stopped")
    else:
        print(json.dumps({"postgres_pid": svc.postgres.running_pid(), "redis_pid": svc.redis.running_pid()}))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lessonloop.demo import run_demo

    return run_demo(learners=args.learners, lessons=args.lessons, port=args.port)


def _model(args: argparse.Namespace) -> int:
    if args.rest[:1] == ["simulate"]:  # simulated learners through the lesson API (curator/simulation.py)
        from curator.simulation import main as simulate_main

        return simulate_main(args.rest[1:])
    from curator.model_eval import main as model_main

    return model_main(args.rest)


def _users_create(args: argparse.Namespace) -> int:
    from review_portal.web.accounts import create_user, random_password
    from shared.errors import LessonloopError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        generated = False
    else:
        password, generated = random_password(), True
    try:
        _with_db(lambda conn: create_user(conn, user_id=args.id, role=args.role, password=password,
                                          display_name=args.name or ""))
    except LessonloopError as exc:
        print(f"lessonloop users create: {exc.detail}", file=sys.stderr)
        return 2
    print(f"created {args.role} '{args.id}'" + (f"; password (shown once): {password}" if generated else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lessonloop", description="Lessonloop adaptive-learning platform")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="services, migrations, API + portal + workers in the foreground")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--no-workers", action="store_true", help="API and portal only")
    up.set_defaults(fn=_up)

    serve = sub.add_parser("serve", help="the API + portal only (stores from the environment or embedded)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(fn=_serve)

    demo = sub.add_parser("demo", help="run the whole loop end to end with simulated learners")
    demo.add_argument("--learners", type=int, default=6)
    demo.add_argument("--lessons", type=int, default=4, help="lessons per learner")
    demo.add_argument("--port", type=int, default=8765)
    demo.set_defaults(fn=_demo)

    token = sub.add_parser("token", help="print a bearer token")
    token.add_argument("--role", required=True, choices=["learner", "designer", "admin"])
    token.add_argument("--sub", required=True, help="the user id (subject)")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(fn=_token)

    cur = sub.add_parser("curriculum", help="curriculum commands")
    cur_sub = cur.add_subparsers(dest="action", required=True)
    load = cur_sub.add_parser("load", help="load (or update) a curriculum JSON file")
    load.add_argument("file")
    load.set_defaults(fn=_curriculum_load)

    sub.add_parser("ingest", help="move ACCEPTED staged items into the bank now").set_defaults(fn=_ingest)

    mig = sub.add_parser("migrate", help="upgrade the schema")
    mig.add_argument("--revision", default="head")
    mig.set_defaults(fn=_migrate)

    worker = sub.add_parser("worker", help="run a worker")
    worker.add_argument("kind", choices=["factory", "curator"])
    worker.set_defaults(fn=_worker)

    svc = sub.add_parser("services", help="the embedded PostgreSQL + Redis")
    svc.add_argument("action", choices=["start", "stop", "status"])
    svc.set_defaults(fn=_services)

    users = sub.add_parser("users", help="review portal users")
    users_sub = users.add_subparsers(dest="action", required=True)
    ucreate = users_sub.add_parser("create", help="create a portal user (prints a random password unless given one)")
    ucreate.add_argument("--id", required=True, help="the user id they sign in with")
    ucreate.add_argument("--role", required=True, choices=["designer", "admin"])
    ucreate.add_argument("--name", default="", help="display name")
    ucreate.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    ucreate.set_defaults(fn=_users_create)

    model = sub.add_parser("model", help="learner model: eval, split, export, fsrs-eval, simulate "
                                         "(see `lessonloop model eval -h`)")
    model.add_argument("rest", nargs=argparse.REMAINDER)
    model.set_defaults(fn=_model)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
