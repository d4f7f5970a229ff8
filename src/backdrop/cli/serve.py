"""`backdrop serve`: arguments, the warnings a user must see, the lines saying where it
listens and why it stopped. The service itself is serve/."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal

from backdrop.cli.common import non_negative_int, positive_float, positive_int, quiet_engine
from backdrop.errors import EXIT_INTERRUPTED, EXIT_OK

logger = logging.getLogger(__name__)

SERVE_HELP = """\
routes:
  POST /v1/remove   the image as the body (Content-Type: image/...) or the multipart field
                    'image'; ?background=&format=&mask=&subject=&quality=&shadow=
                    &canvas=WxH&margin=&align=&fit= as for `backdrop image`. Answers the
                    image, or JSON {"error": ...}.
  POST /v1/refine   multipart: image, matte, hints (green = keep, red = remove)
  GET  /            the page: drop photos, check the edges, touch up, download
  GET  /health      version and queue state;  GET /openapi.json

example:
  backdrop serve &
  curl -sf --data-binary @photo.jpg -H 'Content-Type: image/jpeg' \\
       'http://127.0.0.1:8750/v1/remove?format=webp' -o photo.webp
"""


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="an HTTP API and a page to remove backgrounds",
                       description="Serve background removal over HTTP, with a page to check"
                       " and touch up results.", epilog=SERVE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=non_negative_int, default=8750, help="default: 8750")
    p.add_argument("--workers", type=positive_int,
                   help="worker processes, each with its own models (default: one per core,"
                   " fewer if the free memory holds fewer at about 1 GB each)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request"
                   " (browsers: any user name, the token as the password)")
    p.add_argument("--queue", type=non_negative_int, default=16,
                   help="requests that may wait for a worker; beyond them the answer is 503"
                   " with Retry-After (default: 16)")
    p.add_argument("--time-limit", type=positive_float, default=120.0, metavar="SECONDS",
                   help="processing time allowed per request (default: 120)")
    p.add_argument("--max-megabytes", type=positive_float, default=40.0, metavar="MB",
                   help="largest request body (default: 40)")
    p.add_argument("--max-megapixels", type=positive_float, default=40.0, metavar="MP",
                   help="largest image, checked before decoding (default: 40)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from backdrop.offline import batch
    from backdrop.serve.images import Limits
    from backdrop.serve.server import ServeSettings, bind, run

    if not args.token and not _loopback(args.host):
        logger.warning(f"backdrop: warning: listening on {args.host} without --token: anyone"
                       " who can reach this address can use the server; pass --token SECRET")
    sock = bind(args.host, args.port)   # a taken port fails at once, before models load
    quiet_engine()
    workers = args.workers or batch.jobs(None, 64)
    settings = ServeSettings(
        host=args.host, port=args.port, workers=workers, token=args.token, queue=args.queue,
        time_limit=args.time_limit,
        limits=Limits(max_bytes=int(args.max_megabytes * 2**20),
                      max_pixels=int(args.max_megapixels * 1e6)),
        hide_native=logger.getEffectiveLevel() > logging.DEBUG)
    logger.info(f"backdrop: starting {workers} worker process(es) (loading the models)...")
    stopped_by = run(settings, sock, lambda url: logger.info(
        f"backdrop: serving on {url} (page: {url}, API: {url}v1/remove); Ctrl-C to stop"))
    if stopped_by is None:
        return EXIT_OK
    logger.info(f"backdrop: stopped by {signal.Signals(stopped_by).name}; running requests"
                " were finished")
    return EXIT_INTERRUPTED
