/* SPDX-License-Identifier: Apache-2.0 */
/*
 * noop.c - a program that does nothing, linked (--no-as-needed) with the
 * libraries libomadm needs, libxml2 and libcrypto: the floor of a host's
 * start-up (loading and relocating them), which certpath compares
 * `dmclient get` with.
 */
int main(void)
{
    return 0;
}
