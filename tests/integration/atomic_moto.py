"""moto_server whose S3 object writes are atomic, as S3's are: `python atomic_moto.py -H HOST -p PORT`.

moto enforces `If-None-Match: *` and `If-Match` on PutObject and DeleteObject, but it checks the condition
and then writes as two steps of one request's handling, and its server runs requests in threads: two
writers released at the same instant can both pass the check (measured: one round in about 4,000 of four
writers racing for one key had two winners). S3 does both in one atomic step. Here one lock around moto's
own put_object and delete_object handlers makes the pair atomic; the conditions are still moto's code.
For the tests that race writers (conftest.py `atomic_moto_server`).
"""

from __future__ import annotations

import functools
import sys
import threading

from moto.s3.responses import S3Response

_WRITES = threading.Lock()


def _atomic(handler):
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        with _WRITES:
            return handler(self, *args, **kwargs)

    return run


for _name in ("put_object", "delete_object"):
    setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
