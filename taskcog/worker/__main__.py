"""``python -m taskcog.worker --broker redis://host:6379/0 [--key-file PATH] [--prefix P]``.

The broker may be Redis (``redis://``, ``rediss://``) or NATS JetStream (``nats://``,
``tls://``); the bot must use the same one.

The secret key comes from ``--key-file`` or ``TASKCOG_SECRET_KEY`` (the one the bot uses); a
worker without it refuses to start. ``--new-key`` prints a fresh key and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m taskcog.worker", description=__doc__)
    parser.add_argument("--broker", help="redis://[:password@]host:6379/0 or nats://host:4222")
    parser.add_argument("--broker-env", default="TASKCOG_BROKER", help="env var with the URL")
    parser.add_argument("--key-file", help="file holding the secret key (else the env var)")
    parser.add_argument("--prefix", default="taskcog", help="key/subject prefix (one per bot)")
    parser.add_argument("--id", help="worker id (default: host-pid-random)")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs at once")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="seconds between beats")
    parser.add_argument("--lock-ttl", type=float, default=15.0, help="server lock expiry, s")
    parser.add_argument(
        "--redeliver", type=float, default=120.0, help="s before a dead worker's job is retaken"
    )
    parser.add_argument("--polars-threads", type=int, help="threads polars may use per job")
    parser.add_argument("--new-key", action="store_true", help="print a new secret key, exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.polars_threads:  # before polars is imported anywhere
        os.environ["POLARS_MAX_THREADS"] = str(args.polars_threads)
    from ..engine.backends.brokers import check_prefix, check_url
    from ..engine.backends.secrets import SecretBox, SecretKeyError

    if args.new_key:
        print(SecretBox.new_key())
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = args.broker or os.environ.get(args.broker_env, "")
    try:
        url = check_url(url)
        check_prefix(url, args.prefix)
        box = SecretBox.load(args.key_file)
    except (ValueError, SecretKeyError) as exc:
        print(f"taskcog.worker: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional
        pass
    from .app import Worker

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        worker = Worker(
            url,
            box,
            prefix=args.prefix,
            worker_id=args.id,
            heartbeat=args.heartbeat,
            concurrency=args.concurrency,
            lock_ttl=args.lock_ttl,
            redeliver=args.redeliver,
        )
        print(f"taskcog.worker {worker.id} on {worker.where}", flush=True)
        await worker.run(stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
