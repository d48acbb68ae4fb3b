"""``python -m connectors.sage_frp1000.stub --port P --db FILE``: start the fake Sage FRP 1000 server."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from .server import generate, make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Faux serveur Sage FRP 1000 (démo, tests, benchmarks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGE_STUB_PORT", "8765")))
    parser.add_argument("--db", default=os.environ.get("SAGE_STUB_DB", "var/sage-stub.sqlite3"))
    parser.add_argument("--api-key", default=os.environ.get("SAGE_FRP1000_API_KEY", "demo-sage-key"))
    parser.add_argument("--enable-control", action="store_true", help="serve the test-only /_control surface")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--entry-ms",
        type=float,
        default=float(os.environ.get("SAGE_STUB_ENTRY_MS", "0")),
        metavar="N",
        help="wait N ms (sleeping, no CPU) per entry of a posted batch, as a remote ERP does",
    )
    parser.add_argument(
        "--generate-company", default="BENCH", metavar="CODE", help="company that --suppliers/--accounts fill"
    )
    parser.add_argument("--suppliers", type=int, default=0, help="generate this many suppliers (large referential)")
    parser.add_argument("--accounts", type=int, default=0, help="generate this many expense accounts")
    args = parser.parse_args(argv)

    directory = os.path.dirname(os.path.abspath(args.db))
    os.makedirs(directory, exist_ok=True)
    if args.entry_ms < 0:
        parser.error("--entry-ms must be positive or zero")
    server = make_server(
        args.host,
        args.port,
        args.db,
        args.api_key,
        enable_control=args.enable_control,
        verbose=args.verbose,
        entry_ms=args.entry_ms,
    )
    if args.suppliers or args.accounts:
        started = time.monotonic()
        generate(server.store, args.generate_company, suppliers=args.suppliers, accounts=args.accounts)
        print(
            f"{args.generate_company}: {args.suppliers} suppliers, {args.accounts} accounts"
            f" generated in {time.monotonic() - started:.1f} s",
            flush=True,
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Sage FRP 1000 stub on http://{args.host}:{server.server_address[1]}/api/v1", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
