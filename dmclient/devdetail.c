/* SPDX-License-Identifier: Apache-2.0 */
/*
 * devdetail.c - the host values of ./DevDetail/Ext/Microsoft: a
 * dmclient.conf key when set, else what the OS says (docs/cli.md,
 * "DevDetail/Ext/Microsoft"), handed to the engine (omadm_devdetail_set).
 * LocalTime is the engine's: the local time when it is read.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"

/* The first line of a small file, trimmed; 0 or -1 (absent, unreadable,
 * empty). */
static int first_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *got = fgets(out, (int)size, f);
    fclose(f);
    if (!got)
        return -1;
    out[strcspn(out, "\r\n")] = 0;
    size_t n = strlen(out), b = 0;
    while (n && isspace((unsigned char)out[n - 1]))
        out[--n] = 0;
    while (isspace((unsigned char)out[b]))
        b++;
    memmove(out, out + b, n - b + 1);
    return *out ? 0 : -1;
}

/* PRETTY_NAME of os-release(5), unquoted: "Debian GNU/Linux 12 (bookworm)". */
static int os_release(char *out, size_t size)
{
    static const char *const files[] = {"/etc/os-release", "/usr/lib/os-release"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        char line[512];
        int rc = -1;
        while (rc && fgets(line, sizeof line, f)) {
            if (strncmp(line, "PRETTY_NAME=", 12))
                continue;
            char *v = line + 12;
            v[strcspn(v, "\r\n")] = 0;
            size_t n = strlen(v);
            if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
                v[n - 1] = 0;
                v++;
            }
            if (*v && strlen(v) < size) {
                snprintf(out, size, "%s", v);
                rc = 0;
            }
        }
        fclose(f);
        if (!rc)
            return 0;
    }
    return -1;
}

/* SYSTEM_INFO's dwProcessorType for uname's machine; 0 when it has none. */
static unsigned processor_type(const char *machine)
{
    if (!strcmp(machine, "x86_64") || !strcmp(machine, "amd64"))
        return 8664; /* PROCESSOR_AMD_X8664 */
    if (!strcmp(machine, "i386"))
        return 386;
    if (!strcmp(machine, "i486"))
        return 486;
    if (!strcmp(machine, "i586") || !strcmp(machine, "i686"))
        return 586; /* PROCESSOR_INTEL_PENTIUM, what Windows gives any later x86 */
    if (!strcmp(machine, "ia64"))
        return 2200;
    return 0;
}

void cli_devdetail_values(const cli_t *cli, cli_devdetail_t *v)
{
    const cli_devdetail_conf_t *c = &cli->dd;
    memset(v, 0, sizeof *v);
    struct utsname u;
    bool have_uname = uname(&u) == 0;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1))
        host[0] = 0;

    if (c->device_name)
        snprintf(v->device_name, sizeof v->device_name, "%s", c->device_name);
    else
        snprintf(v->device_name, sizeof v->device_name, "%s", *host ? host : "unknown");
    if (c->dns_computer_name) {
        snprintf(v->dns_computer_name, sizeof v->dns_computer_name, "%s", c->dns_computer_name);
    } else {
        /* the host's first label (Windows: at most 63 characters, as DNS) */
        size_t n = strcspn(host, ".");
        snprintf(v->dns_computer_name, sizeof v->dns_computer_name, "%.*s",
                 (int)(n > 63 ? 63 : n), host);
        if (!n)
            snprintf(v->dns_computer_name, sizeof v->dns_computer_name, "unknown");
    }
    if (c->os_platform)
        snprintf(v->os_platform, sizeof v->os_platform, "%s", c->os_platform);
    else if (os_release(v->os_platform, sizeof v->os_platform) && have_uname)
        snprintf(v->os_platform, sizeof v->os_platform, "%s %s", u.sysname, u.release);
    else if (!*v->os_platform)
        snprintf(v->os_platform, sizeof v->os_platform, "unknown");
    if (c->processor_type)
        snprintf(v->processor_type, sizeof v->processor_type, "%s", c->processor_type);
    else
        snprintf(v->processor_type, sizeof v->processor_type, "%u",
                 have_uname ? processor_type(u.machine) : 0u);
    if (c->total_ram) {
        snprintf(v->total_ram, sizeof v->total_ram, "%s", c->total_ram);
    } else {
        struct sysinfo si;
        unsigned long long mb = 0;
        if (!sysinfo(&si))
            mb = (unsigned long long)si.totalram * (si.mem_unit ? si.mem_unit : 1) / (1024 * 1024);
        snprintf(v->total_ram, sizeof v->total_ram, "%llu", mb);
    }
    if (c->smbios_version)
        snprintf(v->smbios_version, sizeof v->smbios_version, "%s", c->smbios_version);
    else if (first_line("/sys/class/dmi/id/bios_version", v->smbios_version,
                        sizeof v->smbios_version))
        snprintf(v->smbios_version, sizeof v->smbios_version, "unknown");
}

int cli_devdetail_apply(cli_t *cli)
{
    cli_devdetail_t v;
    cli_devdetail_values(cli, &v);
    const struct {
        const char *name, *value;
    } set[] = {
        {"DeviceName", v.device_name},       {"DNSComputerName", v.dns_computer_name},
        {"OSPlatform", v.os_platform},       {"ProcessorType", v.processor_type},
        {"TotalRAM", v.total_ram},           {"SMBIOSVersion", v.smbios_version},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        omadm_error_t err = omadm_devdetail_set(cli->dm, set[i].name, set[i].value);
        if (err) {
            cli_log(OMADM_LOG_ERROR, NULL, "./DevDetail/Ext/Microsoft/%s: %s", set[i].name,
                    omadm_strerror(err));
            return -1;
        }
    }
    return 0;
}
