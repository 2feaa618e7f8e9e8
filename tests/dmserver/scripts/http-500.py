# SPDX-License-Identifier: Apache-2.0
"""http-500: every POST answered HTTP 500: the client retries, then gives up.

dmclient session --help: 500 is retried up to 3 times after 1, 2 and 4 s (no Retry-After);
so 4 requests (--param count=N to expect another number, delays=1,2,4 the minimum gaps).

- msg 1: package 1 -> 500; each retry must carry the same body and come after the documented
  delay -> 500; exactly `count` requests, then nothing within 6 s (the test checks the
  client's exit status 1).
"""


def run(s):
    count = s.param_int("count", 4)
    delays = [float(x) for x in s.param("delays", "1,2,4").split(",") if x]
    first = s.receive()
    s.expect_package1(first)
    s.reply_http(500, {"Content-Type": "text/plain"}, b"internal error\n")
    prev = first
    for k in range(1, count):
        msg = s.receive(timeout=max(delays + [1]) * 3 + 5, what="retry %d" % k)
        gap = msg.time - prev.time
        want = delays[k - 1] if k - 1 < len(delays) else 0
        s.check(gap >= want * 0.95, "retry %d after at least %g s: %.2f s" % (k, want, gap), msg)
        s.check(msg.raw == first.raw, "retry %d sends the same body" % k, msg)
        s.reply_http(500, {"Content-Type": "text/plain"}, b"internal error\n")
        prev = msg
    s.expect_no_request(6, "the client gives up after %d requests" % count)
