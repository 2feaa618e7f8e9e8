# SPDX-License-Identifier: Apache-2.0
"""http-errors: HTTP 503 and 429 with Retry-After before the session gets going.

The CLI retries 401, 429, 500, 502, 503 and 504 up to 3 times, after the server's
Retry-After (dmclient session --help); spec §9 / [MS-MDM]: 429 -> wait Retry-After.

- msg 1: package 1 -> HTTP 503, Retry-After: 1 (no SyncML).
- msg 2: the same package 1 again (byte for byte, same SessionID, MsgID 1), at least 1 s later
  -> HTTP 429, Retry-After: 1.
- msg 3: the same again, at least 1 s later -> the normal flow of the package1 script (Gets of
  DevId and SwV, Results), end of session, no further request.
"""

from _flows import package1_flow


def run(s):
    first = s.receive()
    s.expect_package1(first)
    s.reply_http(503, {"Retry-After": "1", "Content-Type": "text/plain"}, b"busy\n")
    prev = first
    for code in (429, None):
        msg = s.receive()
        gap = msg.time - prev.time
        s.check(gap >= 0.95, "the retry waits Retry-After (1 s): %.2f s" % gap, msg)
        s.check(msg.raw == first.raw, "the retry sends the same body", msg)
        s.expect_package1(msg, session_id=first.session_id)
        if code:
            s.reply_http(code, {"Retry-After": "1", "Content-Type": "text/plain"},
                         b"too many requests\n")
        prev = msg
    r = package1_flow(s, msg)
    s.end(r)
