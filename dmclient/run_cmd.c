/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_cmd.c - dmclient run: the plugins' background work (SCEP enrollment,
 * the WSTEP renewal of the DM identity certificate)
 * through omadm_step(), with the state lock held only while stepping, and
 * not even then while an exchange waits on the network: the HTTP hook
 * releases the store's lock and the state lock for the transfer and takes
 * them again after it (the enrollment then checks that nobody changed it
 * meanwhile).
 *
 * SIGTERM and SIGINT stay blocked for the whole command (stop.c): no
 * system call is interrupted half way, and nothing is cut off between two
 * writes.  A transfer, a wait for the lock and the wait between steps look
 * for one and give up within 100 ms; the step then ends without changing
 * the enrollment it was working on, and the loop ends.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "http.h"

#define MAX_MINUTE_SECONDS 86400u
#define SYSTEM_CAPATH "/etc/ssl/certs"

const char cli_run_usage[] =
    "usage: dmclient [--state-dir DIR] run [--once | --until-idle] [-v]\n"
    "\n"
    "Do the background work that plugins schedule (certificate enrollment\n"
    "over SCEP, the DM identity certificate's renewal over WSTEP): each step\n"
    "locks the state directory, does what is due, and unlocks it again, so\n"
    "other dmclient commands run while this one waits, also while a step\n"
    "waits on a SCEP server.\n"
    "\n"
    "  (no option)    run until SIGTERM or SIGINT: step, wait until the next\n"
    "                 work is due, but at most one minute (work that other\n"
    "                 commands schedule meanwhile is picked up), step again\n"
    "  --once         one step, then exit\n"
    "  --until-idle   step and wait until no work is scheduled, then exit\n"
    "  -v, --verbose  also print debug messages\n"
    "\n"
    "Progress, warnings and errors go to stderr as 'dmclient: ...' lines.\n"
    "SIGTERM or SIGINT ends the command at once (exit 0): an exchange with a\n"
    "server is given up and taken up again at the next run.\n"
    "\n"
    "environment:\n"
    "  DMCLIENT_MINUTE_SECONDS  length in seconds of one minute of the\n"
    "                 enrollment schedule (RetryDelay) and of the idle wait;\n"
    "                 1..86400, default 60 (for tests)\n"
    "\n"
    "Exit status: 0 on success or when stopped by a signal; 1 when the state\n"
    "cannot be opened, or a step failed with --once or --until-idle (without\n"
    "them a failed step is logged and retried a minute later); 2 on usage\n"
    "errors.\n";

enum { RUN_FOREVER, RUN_ONCE, RUN_UNTIL_IDLE };

int cli_minute_seconds(unsigned *out)
{
    const char *v = getenv("DMCLIENT_MINUTE_SECONDS");
    *out = 60;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long n = (*v >= '0' && *v <= '9') ? strtoul(v, &end, 10) : 0;
    if (!end || *end || errno || n < 1 || n > MAX_MINUTE_SECONDS) {
        fprintf(stderr,
                "dmclient: DMCLIENT_MINUTE_SECONDS must be a whole number of seconds "
                "from 1 to %u, not '%s'\n",
                MAX_MINUTE_SECONDS, v);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

/* The HTTP hook of a step: the state (and its store) of the step is
 * unlocked while the transfer runs. */
typedef struct step_http {
    cli_t *cli;              /* the open state of the step */
    cli_http_conns_t *conns; /* connections kept between its exchanges (NULL: none yet) */
} step_http_t;

/* An exchange with TLS client authentication (the DM identity's WSTEP
 * renewal, docs/wstep.md): https:// only, the server verified against the
 * system CAs and dmclient.conf's cacert (as the DM session does), the
 * certificate and key the library gives, no redirect followed. */
static omadm_http_result_t client_tls_request(step_http_t *sh, const omadm_http_req_t *req,
                                              omadm_http_resp_t *resp, char *err,
                                              size_t err_size)
{
    const char *cacert = sh->cli->acct.cacert;
    char *cacert_path = NULL;
    struct stat st;
    if (strncasecmp(req->url, "https://", 8) || !req->client_key_pem) {
        snprintf(err, err_size, "TLS client authentication needs an https:// URL");
        return OMADM_HTTP_FAILED;
    }
    if (cacert && cacert[0] != '/' &&
        asprintf(&cacert_path, "%s/%s", sh->cli->state_dir, cacert) < 0) {
        snprintf(err, err_size, "out of memory");
        return OMADM_HTTP_FAILED;
    }
    const cli_tls_t tls = {
        .cacert = cacert_path ? cacert_path : cacert,
        .capath = !stat(SYSTEM_CAPATH, &st) && S_ISDIR(st.st_mode) ? SYSTEM_CAPATH : NULL,
        .cert_pem = (const uint8_t *)req->client_cert_pem,
        .cert_pem_len = strlen(req->client_cert_pem),
        .key_pem = (const uint8_t *)req->client_key_pem,
        .key_pem_len = strlen(req->client_key_pem),
    };
    const cli_http_post_t post = {
        .url = req->url,
        .content_type = req->content_type,
        .body = req->body,
        .body_len = req->body_len,
        .max_response = req->max_response,
        .timeout_s = req->timeout_s ? req->timeout_s : 60,
        .connect_timeout_s = 10,
    };
    cli_http_client_t *c = NULL;
    cli_http_reply_t reply = {0};
    omadm_http_result_t r = OMADM_HTTP_FAILED;
    if (!cli_http_client_new(&tls, &c, err, err_size))
        r = cli_http_client_post(c, &post, &reply, err, err_size);
    if (r == OMADM_HTTP_OK) {
        resp->status = reply.status;
        resp->body = reply.body; /* cli_http_release frees it */
        resp->len = reply.len;
        snprintf(resp->content_type, sizeof resp->content_type, "%s", reply.content_type);
    }
    cli_http_client_free(c);
    free(cacert_path);
    return r;
}

static omadm_http_result_t step_request(void *ctx, const omadm_http_req_t *req,
                                        omadm_http_resp_t *resp, char *err, size_t err_size)
{
    step_http_t *sh = ctx;
    if (req->client_cert_pem)
        return client_tls_request(sh, req, resp, err, err_size);
    int unlocked = !cli_unlock(sh->cli);
    if (!sh->conns)
        sh->conns = cli_http_conns_new(); /* NULL (no memory): a connection per exchange */
    omadm_http_result_t r = cli_http_request_kept(sh->conns, req, resp, err, err_size);
    /* a failed relock (a stop signal while another dmclient held the lock)
     * leaves the store unlocked: the library then ends the step */
    if (unlocked)
        cli_relock(sh->cli);
    return r;
}

static void step_release(void *ctx, omadm_http_resp_t *resp)
{
    (void)ctx;
    cli_http_release(resp);
}

int cli_run_step(const char *state_dir, unsigned minute, bool retried, int64_t *next,
                 void (*after)(void *ctx, cli_t *cli), void *ctx)
{
    step_http_t step_http = {0};
    const omadm_platform_t platform = {.log = cli_log_hook};
    const omadm_http_t http = {.ctx = &step_http, .request = step_request,
                               .release = step_release};
    const omadm_certstore_host_t host = {
        .http = &http,
        .minute_seconds = minute,
        .log = cli_log_hook,
    };
    cli_t cli;
    *next = OMADM_NEVER;
    int rc = cli_open(&cli, state_dir, &platform);
    if (rc)
        return rc == CLI_STOPPED ? CLI_STOPPED : -1;
    step_http.cli = &cli;
    omadm_certstore_set_host(cli.certs, &host);
    omadm_error_t err = omadm_step(cli.dm, next);
    if (err)
        cli_log(OMADM_LOG_ERROR, "run", "background work failed: %s%s", omadm_strerror(err),
                retried ? "; trying again later" : "");
    if (after)
        after(ctx, &cli);
    cli_close(&cli); /* unlocks the state */
    cli_http_conns_free(step_http.conns); /* the step's connections end with it */
    return err ? 1 : 0;
}

int cli_run_main(const char *state_dir, int argc, char **argv)
{
    int mode = RUN_FOREVER, verbose = 0;
    for (int i = 1; i < argc; i++) {
        int m = -1;
        if (!strcmp(argv[i], "--once"))
            m = RUN_ONCE;
        else if (!strcmp(argv[i], "--until-idle"))
            m = RUN_UNTIL_IDLE;
        else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
            verbose = 1;
        else {
            fprintf(stderr, "dmclient: run: unexpected argument '%s'\n%s", argv[i],
                    cli_run_usage);
            return 2;
        }
        if (m >= 0 && mode != RUN_FOREVER && mode != m) {
            fprintf(stderr, "dmclient: run: --once and --until-idle do not go together\n%s",
                    cli_run_usage);
            return 2;
        }
        if (m >= 0)
            mode = m;
    }
    unsigned minute;
    if (cli_minute_seconds(&minute))
        return 2;
    if (verbose)
        cli_log_verbose();

    if (cli_stop_block()) {
        fprintf(stderr, "dmclient: run: cannot block signals: %s\n", strerror(errno));
        return 1;
    }
    /* a peer closing a connection must not kill the process (libcurl is
     * told not to touch signals) */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);

    const int64_t idle_wait = minute; /* the longest wait between two steps */
    int status = 0;
    for (;;) {
        if (cli_stop_wait(0)) {
            cli_log(OMADM_LOG_DEBUG, "run", "stopped by a signal");
            break;
        }
        int64_t next = OMADM_NEVER;
        int rc = cli_run_step(state_dir, minute, mode == RUN_FOREVER, &next, NULL, NULL);
        if (rc == CLI_STOPPED) {
            cli_log(OMADM_LOG_DEBUG, "run", "stopped by a signal");
            break;
        }
        if (rc < 0) {
            status = 1;
            break;
        }
        if (rc && mode != RUN_FOREVER) {
            status = 1;
            break;
        }
        int64_t now = (int64_t)time(NULL), wait;
        if (mode == RUN_ONCE && next != OMADM_NEVER)
            cli_log(OMADM_LOG_DEBUG, "run", "next work due in %lld s",
                    (long long)(next > now ? next - now : 0));
        if (mode == RUN_ONCE || (mode == RUN_UNTIL_IDLE && next == OMADM_NEVER))
            break;
        if (next == OMADM_NEVER)
            wait = idle_wait;
        else if (next <= now)
            wait = 0;
        else
            wait = next - now < idle_wait ? next - now : idle_wait;
        if (rc && wait < idle_wait)
            wait = idle_wait; /* do not spin on work that keeps failing */
        if (next == OMADM_NEVER)
            cli_log(OMADM_LOG_DEBUG, "run", "nothing scheduled; looking again in %lld s",
                    (long long)wait);
        else
            cli_log(OMADM_LOG_DEBUG, "run", "next work due in %lld s; stepping in %lld s",
                    (long long)(next > now ? next - now : 0), (long long)wait);
        if (cli_stop_wait(wait * 1000)) {
            cli_log(OMADM_LOG_DEBUG, "run", "stopped by a signal");
            break;
        }
    }
    /* SIGTERM and SIGINT stay blocked: one that is still pending must not
     * kill the process on its way out */
    sigaction(SIGPIPE, &old_pipe, NULL);
    return status;
}
