# SPDX-License-Identifier: Apache-2.0
"""wstep-renew: the DM side of a renewal of the DM identity certificate (docs/wstep.md,
tests/scripts/test-wstep-renew.sh).  One session per run.

Parameters:
- mode=setup: package 1 without a generic alert; the server sets Renew/ServerURL (param
  wstep_url), then in one Atomic (example C5) ROBOSupport true, RenewPeriod (param period,
  default 60), RetryInterval (param retry, default 4), then, with param renew_now=1, Execs
  Renew/RenewNow; every Status 200.  Then it Gets CertThumbprint, which must be param thumb.
- mode=check: package 1 with one generic alert (1226) when param alert_data is given: Source
  ./Vendor/MSFT/CertificateStore/My/WSTEP/Renew/Status, Type org.omadm.wstep.renewal.result,
  Format chr, Mark param alert_mark (default informational), Data param alert_data; the server
  Gets CertThumprint, Renew/Status and Renew/ErrorCode, which must be params thumb, status and
  error.
The client certificate of each session is in the log (dmserver --client-ca).
"""

from dmserver import R

BASE = "./Vendor/MSFT/CertificateStore/My/WSTEP"
ALERT_TYPE = "org.omadm.wstep.renewal.result"


def setup(s, msg):
    s.expect_package1(msg)
    m = s.message(msg)
    m.ack_all()
    m.replace(BASE + "/Renew/ServerURL", s.param("wstep_url"), format="chr")
    a = m.atomic()
    a.replace(BASE + "/Renew/ROBOSupport", "true", format="bool")
    a.replace(BASE + "/Renew/RenewPeriod", s.param("period", "60"), format="int")
    a.replace(BASE + "/Renew/RetryInterval", s.param("retry", "4"), format="int")
    if s.param("renew_now") == "1":
        m.exec(BASE + "/Renew/RenewNow")
    g = m.get(BASE + "/CertThumbprint")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R(BASE + "/CertThumbprint", s.param("thumb"))]})
    s.end(r)


def check(s, msg):
    alerts = ()
    if s.param("alert_data"):
        alerts = [dict(source=BASE + "/Renew/Status", type=ALERT_TYPE, format="chr",
                       mark=s.param("alert_mark", "informational"), data=s.param("alert_data"))]
    s.expect_package1(msg, alerts=alerts)
    m = s.message(msg)
    m.ack_all()
    g1 = m.get(BASE + "/CertThumprint")
    g2 = m.get(BASE + "/Renew/Status")
    g3 = m.get(BASE + "/Renew/ErrorCode")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g1: [R(BASE + "/CertThumprint", s.param("thumb"))],
                            g2: [R(BASE + "/Renew/Status", s.param("status"), format="int")],
                            g3: [R(BASE + "/Renew/ErrorCode", s.param("error"), format="int")]})
    s.end(r)


def run(s):
    msg = s.receive()
    if s.param("mode", "setup") == "setup":
        setup(s, msg)
    else:
        check(s, msg)
