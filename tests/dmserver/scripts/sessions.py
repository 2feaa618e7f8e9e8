# SPDX-License-Identifier: Apache-2.0
"""sessions: one short session after another, as dmclient daemon polls (test-daemon.sh, the
daemon soak of bench/).

Parameters: sessions (how many sessions must come, default 3); linger (seconds to go on serving
after that many came, default 2).

- every session: package 1 checked as in the package1 script (Alert 1201, the DevInfo Replace,
  no generic alert); from the second session on its SessionID is the previous session's + 1
  (mod 65535).  The server answers with the Statuses only: the client has nothing to answer
  and the session ends after one message each way.
- each session is printed as it comes ("server: session K (SessionID N)").
- the run passes when at least `sessions` sessions came and then no request for `linger`
  seconds, or SIGUSR1 arrived (the client has exited); sessions that come meanwhile are served
  as the others.  Before `sessions` have come, each must come within --timeout.
"""


def run(s):
    want = s.param_int("sessions", 3)
    linger = float(s.param("linger", "2"))
    n = 0
    last = None
    while True:
        msg = s.receive(timeout=linger if n >= want else None, allow_timeout=n >= want,
                        what="package 1 of session %d" % (n + 1))
        if msg is None:
            break
        n += 1
        s.expect_package1(msg)
        if last is not None and last.isdigit():
            s.check_eq("SessionID of session %d" % n, str(int(last) % 65535 + 1),
                       msg.session_id, msg)
        last = msg.session_id
        print("server: session %d (SessionID %s)" % (n, msg.session_id), flush=True)
        m = s.message(msg)
        m.ack_all()
        s.reply(m)
    s.note("sessions: %d" % n)
    s.check(n >= want, "at least %d sessions came (got %d)" % (want, n))
